"""Small builders for plugin tests: an inventory in a few lines, with every number in sight.

Defaults make one region `r1` with one site `s1` in zone `z1`, one host of 10 vCPU (ratio 1) and
40 GB, and a flavor `f.small` of 1 vCPU / 4 GB; tests override only what they check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from extender.domain.model import (
    EipPool,
    Flavor,
    GeoLocation,
    Host,
    Inventory,
    LabelSelector,
    LabelSelectorRequirement,
    Operator,
    Placement,
    RegionSelector,
    Site,
    VMRequest,
    VolumePool,
    node_ref,
)
from extender.engine.framework import FilterPlugin, ScorePlugin, Status
from extender.engine.outcomes import status_at
from extender.engine.places import OnePlace, every_site
from extender.engine.snapshot import Candidate, Snapshot


def make_host(name: str = "h1", vcpus: float = 10, used_vcpus: float = 0, mem: float = 40, used_mem: float = 0,
              types: Iterable[str] = ("general",), ratio: float = 1.0, max_count: int | None = None) -> Host:
    return Host(host_name=name, total_vcpus=vcpus, used_vcpus=used_vcpus, total_mem=mem, used_mem=used_mem,
                total_disk=1000, used_disk=0, resource_types=frozenset(types), cpu_allocation_ratio=ratio,
                max_count=max_count)


def make_site(id: str = "s1", region: str = "r1", az: str = "z1", status: str = "active",
              hosts: Iterable[Host] | None = None, max_count: int | None = None, eip: str = "r1-bgp",
              attributes: Mapping[str, str] | None = None, country: str = "china", area: str = "huanan",
              province: str = "guangdong", city: str = "shenzhen", operator: Operator = Operator("op1", "unicom"),
              ) -> Site:
    return Site(id=id, name=id, region=region, az=az, status=status, city=city, province=province, area=area,
                country=country, operator=operator, eip_type_name=eip,
                attributes=MappingProxyType(dict(attributes or {})),
                hosts=tuple(hosts) if hosts is not None else (make_host(),), max_count=max_count)


def make_flavor(id: str = "f.small", vcpus: int = 1, ram: int = 4, region: str = "r1",
                resource_type: str = "general") -> Flavor:
    return Flavor(id=id, region=region, vcpus=vcpus, ram=ram, disk=40, resource_type=resource_type)


def make_eip_pool(name: str = "r1-bgp", size: int = 10, used: int = 0, region: str = "r1") -> EipPool:
    return EipPool(region=region, name=name, status="active", size=size, used=used)


def make_volume_pool(volume_type: str = "SAS", total: float = 1000, provisioned: float = 0, ratio: float = 1.0,
                     thin: bool = True, reserved: float = 0, region: str = "r1", az: str = "z1",
                     name: str = "p1") -> VolumePool:
    return VolumePool(region=region, availability_zone=az, name=name, volume_type=volume_type,
                      total_capacity_gb=total, free_capacity_gb=total - provisioned,
                      allocated_capacity_gb=provisioned, provisioned_capacity_gb=provisioned,
                      max_over_subscription_ratio=ratio, thin_provisioning_support=thin,
                      reserved_percentage=reserved)


def make_inventory(sites: Iterable[Site] | None = None, flavors: Iterable[Flavor] | None = None,
                   eip_pools: Iterable[EipPool] | None = None, volume_pools: Iterable[VolumePool] = ()) -> Inventory:
    sites = list(sites) if sites is not None else [make_site()]
    flavors = list(flavors) if flavors is not None else [make_flavor()]
    pools = list(eip_pools) if eip_pools is not None else [make_eip_pool()]
    return Inventory(
        sites=MappingProxyType({s.id: s for s in sites}),
        flavors=MappingProxyType({(f.region, f.id): f for f in flavors}),
        eip_pools=MappingProxyType({(p.region, p.name): p for p in pools}),
        volume_pools=tuple(volume_pools),
    )


def make_placement(site: str = "s1", flavor: str = "f.small", vcpus: int = 1, ram: int = 4, eip: bool = False,
                   storage: Mapping[str, int] | None = None, group: str = "", labels: Mapping[str, str] | None = None,
                   key: str = "") -> Placement:
    make_placement.count += 1  # type: ignore[attr-defined]
    return Placement(key=key or f"p{make_placement.count}", site_id=site, flavor_id=flavor,  # type: ignore[attr-defined]
                     vcpus=vcpus, ram=ram, need_eip=eip, storage=MappingProxyType(dict(storage or {})),
                     group=group, labels=MappingProxyType(dict(labels or {})))


make_placement.count = 0  # type: ignore[attr-defined]


def make_snapshot(inventory: Inventory | None = None, placements: Iterable[Placement] = ()) -> Snapshot:
    return Snapshot.build(inventory or make_inventory(), tuple(placements))


def make_request(flavors: Iterable[str] = ("f.small",), need_eip: bool = False,
                 storage: Mapping[str, int] | None = None, regions: Iterable[tuple[str, Iterable[str]]] = (),
                 geo: GeoLocation | None = None, operator: str = "", site_id: str = "", strategy: str = "",
                 domain_id: str = "", group: str = "", affinity: LabelSelector | None = None,
                 antiaffinity: LabelSelector | None = None) -> VMRequest:
    return VMRequest(
        flavors=tuple(flavors), need_eip=need_eip, storage=MappingProxyType(dict(storage or {})),
        regions=tuple(RegionSelector(r, tuple(zones)) for r, zones in regions), geo_location=geo,
        operator=operator, site_id=site_id, strategy=strategy, domain_id=domain_id, group=group,
        stack_affinity=affinity, stack_antiaffinity=antiaffinity,
    )


def make_selector(labels: Mapping[str, str] | None = None,
                  expressions: Iterable[tuple[str, str, Iterable[str]]] = ()) -> LabelSelector:
    return LabelSelector(MappingProxyType(dict(labels or {})),
                         tuple(LabelSelectorRequirement(k, op, tuple(v)) for k, op, v in expressions))


def candidate(snapshot: Snapshot, site_id: str = "s1", labels: Mapping[str, str] | None = None) -> Candidate:
    """The candidate for a node named after the site (node labels, e.g. topology ones, optional)."""
    site = snapshot.inventory.sites[site_id]
    return Candidate(node=node_ref(site_id, labels), site=site, usage=snapshot.usage(site_id))


def judge(predicate: FilterPlugin, request: VMRequest, snapshot: Snapshot, site_id: str = "s1",
          labels: Mapping[str, str] | None = None) -> Status | None:
    """The predicate's one check at the node named after `site_id`, asked twice: on that node alone
    and on the columns of every site (when the node agrees with its site); both must say the same."""
    alone = _alone(candidate(snapshot, site_id, labels), snapshot)
    said = status_at(predicate.check(request, alone), alone)
    if snapshot.table.node_position(node_ref(site_id, labels)) >= 0:
        assert judge_every_site(predicate, request, snapshot)[site_id] == said
    return said


def judge_every_site(predicate: FilterPlugin, request: VMRequest, snapshot: Snapshot) -> dict[str, Status | None]:
    """The predicate's one check over every site at once, by site id; each site's answer must be
    what the check says of that site's node alone."""
    every = every_site(snapshot)
    outcomes = predicate.check(request, every)
    said = {site_id: status_at(outcomes, every, place) for place, site_id in enumerate(snapshot.table.ids)}
    for site_id, status in said.items():
        alone = _alone(candidate(snapshot, site_id), snapshot)
        assert status_at(predicate.check(request, alone), alone) == status, site_id
    return said


def score_at(priority: ScorePlugin, request: VMRequest, snapshot: Snapshot, site_id: str = "s1") -> float:
    """The priority's one score at the node named after `site_id`, on that node alone and on the
    columns of every site: both must be the same number."""
    alone = _one_score(priority, request, _alone(candidate(snapshot, site_id), snapshot))
    every = priority.score(request, every_site(snapshot))
    column = every[snapshot.table.position[site_id]] if isinstance(every, np.ndarray) else every
    assert float(column) == alone
    return alone


def _one_score(priority: ScorePlugin, request: VMRequest, at: OnePlace) -> float:
    score = priority.score(request, at)
    return float(score[0] if isinstance(score, np.ndarray) else score)


def _alone(candidate: Candidate, snapshot: Snapshot) -> OnePlace:
    return OnePlace(candidate, snapshot)
