"""The inventory as custom resources of site-extender.io/v1alpha1 (deploy/crds), both ways.

A `Site` object is one site of sites.json with its hosts from site_nodes.json: what an operator
declares in the spec; the hosts and their use, which a resource collector reports, in the status.
A `Region` object holds the region's zones, flavors and volume types in the spec, its EIP and volume
pools (whose use a collector reports too) in the status. `inventory_objects` turns an `Inventory` into
these objects (what `site-extender import` applies); `inventory_from_objects` builds the very same
`Inventory` back (what the extender decides from in a cluster), so the engine never knows the source.

Pure: no API calls. The msgspec shapes below are the schemas of deploy/crds in Python; camelCase on
the wire.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

import msgspec
from msgspec import Struct

from extender.domain.model import (
    EipPool,
    Flavor,
    Host,
    Inventory,
    Operator,
    Region,
    Site,
    VolumePool,
    VolumeType,
)
from extender.errors import InventoryError

GROUP = "site-extender.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SITES, REGIONS, ALLOCATIONS = "sites", "regions", "allocations"
SITE_KIND, REGION_KIND = "Site", "Region"


# --- the objects' shapes ------------------------------------------------------------------------------


class Meta(Struct, frozen=True, omit_defaults=True):
    name: str = ""
    resourceVersion: str = ""
    deletionTimestamp: str | None = None


class Location(Struct, frozen=True, omit_defaults=True):
    country: str = ""
    area: str = ""
    province: str = ""
    city: str = ""


class SiteOperator(Struct, frozen=True, omit_defaults=True):
    id: str = ""
    name: str = ""


class SiteSpec(Struct, frozen=True, omit_defaults=True, rename="camel"):
    id: str
    region: str
    zone: str
    display_name: str = ""
    status: str = "active"
    location: Location = Location()
    operator: SiteOperator = SiteOperator()
    eip_pool: str = ""
    attributes: dict[str, str] = {}


class HostStatus(Struct, frozen=True, omit_defaults=True, rename="camel"):
    name: str
    total_vcpus: float = 0
    used_vcpus: float = 0
    total_memory: float = 0
    used_memory: float = 0
    total_disk: float = 0
    used_disk: float = 0
    resource_types: list[str] = []
    cpu_allocation_ratio: float = 1.0
    max_count: int | None = None


class Stock(Struct, frozen=True, rename="camel"):
    hosts: int = 0
    total_vcpus: float = 0
    used_vcpus: float = 0
    total_memory: float = 0
    used_memory: float = 0


class SiteStatus(Struct, frozen=True, omit_defaults=True, rename="camel"):
    max_count: int | None = None
    hosts: list[HostStatus] = []
    stock: Stock | None = None


class SiteObject(Struct, frozen=True, omit_defaults=True):
    spec: SiteSpec
    metadata: Meta = Meta()
    status: SiteStatus = SiteStatus()


class FlavorSpec(Struct, frozen=True, omit_defaults=True, rename="camel"):
    id: str
    vcpus: int
    ram: int
    disk: int = 0
    resource_type: str = ""
    operation_status: str = ""
    operation_zones: dict[str, str] = {}


class VolumeTypeSpec(Struct, frozen=True, omit_defaults=True):
    id: str
    name: str = ""


class RegionSpec(Struct, frozen=True, omit_defaults=True, rename="camel"):
    region: str
    availability_zones: list[str] | None = None
    flavors: list[FlavorSpec] = []
    volume_types: list[VolumeTypeSpec] = []


class EipPoolStatus(Struct, frozen=True, omit_defaults=True):
    name: str
    size: int
    used: int = 0
    status: str = "active"


class VolumePoolStatus(Struct, frozen=True, omit_defaults=True, rename="camel"):
    availability_zone: str
    name: str
    volume_type: str
    total_capacity_gb: float
    free_capacity_gb: float = 0
    allocated_capacity_gb: float = 0
    provisioned_capacity_gb: float = 0
    max_over_subscription_ratio: float = 1.0
    thin_provisioning_support: bool = False
    reserved_percentage: float = 0


class RegionStatus(Struct, frozen=True, omit_defaults=True, rename="camel"):
    eip_pools: list[EipPoolStatus] = []
    volume_pools: list[VolumePoolStatus] = []


class RegionObject(Struct, frozen=True, omit_defaults=True):
    spec: RegionSpec
    metadata: Meta = Meta()
    status: RegionStatus = RegionStatus()


# --- names ------------------------------------------------------------------------------------------

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def object_name(key: str) -> str:
    """The object name for an inventory id: the id itself when it is a valid Kubernetes name, else a
    lowercase, cleaned form of it with a hash of the id (ids differing only in case stay apart)."""
    if _DNS_NAME.match(key) and ".." not in key:
        return key
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", key.lower()).strip("-.")[:200] or "x"
    return f"{cleaned}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


# --- Inventory -> objects ------------------------------------------------------------------------------


def stock(hosts: Iterable[HostStatus]) -> Stock:
    """The sums `kubectl get sites` shows; whoever writes a site's hosts writes these with them."""
    hosts = list(hosts)
    return Stock(hosts=len(hosts), total_vcpus=sum(h.total_vcpus for h in hosts),
                 used_vcpus=sum(h.used_vcpus for h in hosts), total_memory=sum(h.total_memory for h in hosts),
                 used_memory=sum(h.used_memory for h in hosts))


def site_object(site: Site) -> SiteObject:
    hosts = [HostStatus(name=h.host_name, total_vcpus=h.total_vcpus, used_vcpus=h.used_vcpus,
                        total_memory=h.total_mem, used_memory=h.used_mem, total_disk=h.total_disk,
                        used_disk=h.used_disk, resource_types=sorted(h.resource_types),
                        cpu_allocation_ratio=h.cpu_allocation_ratio, max_count=h.max_count)
             for h in site.hosts]
    return SiteObject(
        metadata=Meta(name=object_name(site.id)),
        spec=SiteSpec(id=site.id, region=site.region, zone=site.az,
                      display_name=site.name if site.name != site.id else "", status=site.status,
                      location=Location(site.country, site.area, site.province, site.city),
                      operator=SiteOperator(site.operator.id, site.operator.name), eip_pool=site.eip_type_name,
                      attributes=dict(site.attributes)),
        status=SiteStatus(max_count=site.max_count, hosts=hosts, stock=stock(hosts)),
    )


def region_objects(inventory: Inventory) -> list[RegionObject]:
    """One object per region named anywhere in the inventory (region.yaml, flavors, pools, volume
    types, sites), in the order first named."""
    names: dict[str, None] = {}
    for name in (*inventory.regions, *(r for r, _ in inventory.flavors), *(r for r, _ in inventory.eip_pools),
                 *(p.region for p in inventory.volume_pools), *(t.region for t in inventory.volume_types.values()),
                 *(s.region for s in inventory.sites.values())):
        names.setdefault(name)
    objects = []
    for name in names:
        listed = inventory.regions.get(name)
        objects.append(RegionObject(
            metadata=Meta(name=object_name(name)),
            spec=RegionSpec(
                region=name,
                availability_zones=list(listed.availability_zones) if listed else None,
                flavors=[FlavorSpec(id=f.id, vcpus=f.vcpus, ram=f.ram, disk=f.disk, resource_type=f.resource_type,
                                    operation_status=f.operation_status, operation_zones=dict(f.zone_flags))
                         for (r, _), f in inventory.flavors.items() if r == name],
                volume_types=[VolumeTypeSpec(id=t.id, name=t.name if t.name != t.id else "")
                              for t in inventory.volume_types.values() if t.region == name],
            ),
            status=RegionStatus(
                eip_pools=[EipPoolStatus(name=p.name, size=p.size, used=p.used, status=p.status)
                           for (r, _), p in inventory.eip_pools.items() if r == name],
                volume_pools=[VolumePoolStatus(
                    availability_zone=p.availability_zone, name=p.name, volume_type=p.volume_type,
                    total_capacity_gb=p.total_capacity_gb, free_capacity_gb=p.free_capacity_gb,
                    allocated_capacity_gb=p.allocated_capacity_gb, provisioned_capacity_gb=p.provisioned_capacity_gb,
                    max_over_subscription_ratio=p.max_over_subscription_ratio,
                    thin_provisioning_support=p.thin_provisioning_support, reserved_percentage=p.reserved_percentage)
                    for p in inventory.volume_pools if p.region == name],
            ),
        ))
    return objects


def inventory_objects(inventory: Inventory) -> list[SiteObject | RegionObject]:
    """Every object that stands for `inventory`: its regions, then its sites."""
    problems = [f"volume type {t.id!r} names no region: a Region object must hold it"
                for t in inventory.volume_types.values() if not t.region]
    if problems:
        raise InventoryError(problems)
    return [*region_objects(inventory), *(site_object(s) for s in inventory.sites.values())]


def manifest(obj: SiteObject | RegionObject, part: str) -> dict[str, Any]:
    """The object as server-side apply takes it: `spec` (the object) or `status` (its subresource)."""
    kind = SITE_KIND if isinstance(obj, SiteObject) else REGION_KIND
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": obj.metadata.name},
            part: msgspec.to_builtins(getattr(obj, part))}


# --- objects -> Inventory ------------------------------------------------------------------------------


def natural_key(text: str) -> tuple[Any, ...]:
    """site2 before site10: the order a cluster's inventory keeps (the API lists by name), as close
    to the files' order as names allow. It breaks ties between equally good sites."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def inventory_from_objects(sites: Iterable[SiteObject], regions: Iterable[RegionObject]) -> Inventory:
    """The `Inventory` these objects stand for, as `load_inventory` builds it from files. Objects being
    deleted are left out. Raises `InventoryError` listing every object that contradicts another."""
    problems: list[str] = []
    built: dict[str, Site] = {}
    owner: dict[str, str] = {}
    for obj in sorted((s for s in sites if s.metadata.deletionTimestamp is None), key=lambda s: natural_key(s.spec.id)):
        spec, status = obj.spec, obj.status
        if spec.id in built:
            problems.append(f"Site {obj.metadata.name}: spec.id {spec.id!r} is also the id of Site {owner[spec.id]}")
            continue
        owner[spec.id] = obj.metadata.name
        built[spec.id] = Site(
            id=spec.id, name=spec.display_name or spec.id, region=spec.region, az=spec.zone, status=spec.status,
            city=spec.location.city, province=spec.location.province, area=spec.location.area,
            country=spec.location.country, operator=Operator(spec.operator.id, spec.operator.name),
            eip_type_name=spec.eip_pool, attributes=MappingProxyType(dict(spec.attributes)),
            hosts=tuple(Host(host_name=h.name, total_vcpus=h.total_vcpus, used_vcpus=h.used_vcpus,
                             total_mem=h.total_memory, used_mem=h.used_memory, total_disk=h.total_disk,
                             used_disk=h.used_disk, resource_types=frozenset(h.resource_types),
                             cpu_allocation_ratio=h.cpu_allocation_ratio, max_count=h.max_count)
                        for h in status.hosts),
            max_count=status.max_count,
        )
    flavors: dict[tuple[str, str], Flavor] = {}
    eip_pools: dict[tuple[str, str], EipPool] = {}
    volume_pools: list[VolumePool] = []
    volume_types: dict[str, VolumeType] = {}
    listed: dict[str, Region] = {}
    seen: dict[str, str] = {}
    for obj in sorted((r for r in regions if r.metadata.deletionTimestamp is None),
                      key=lambda r: natural_key(r.spec.region)):
        spec, status, name = obj.spec, obj.status, obj.spec.region
        if name in seen:
            problems.append(f"Region {obj.metadata.name}: spec.region {name!r} is also the region of Region {seen[name]}")
            continue
        seen[name] = obj.metadata.name
        if spec.availability_zones is not None:
            listed[name] = Region(name=name, availability_zones=tuple(spec.availability_zones))
        for f in spec.flavors:
            flavors[(name, f.id)] = Flavor(id=f.id, region=name, vcpus=f.vcpus, ram=f.ram, disk=f.disk,
                                           resource_type=f.resource_type, operation_status=f.operation_status,
                                           zone_flags=tuple(sorted(f.operation_zones.items())))
        for t in spec.volume_types:
            volume_types[t.id] = VolumeType(id=t.id, name=t.name or t.id, region=name)
        for p in status.eip_pools:
            eip_pools[(name, p.name)] = EipPool(region=name, name=p.name, status=p.status, size=p.size, used=p.used)
        volume_pools.extend(VolumePool(
            region=name, availability_zone=p.availability_zone, name=p.name, volume_type=p.volume_type,
            total_capacity_gb=p.total_capacity_gb, free_capacity_gb=p.free_capacity_gb,
            allocated_capacity_gb=p.allocated_capacity_gb, provisioned_capacity_gb=p.provisioned_capacity_gb,
            max_over_subscription_ratio=p.max_over_subscription_ratio,
            thin_provisioning_support=p.thin_provisioning_support, reserved_percentage=p.reserved_percentage)
            for p in status.volume_pools)
    if problems:
        raise InventoryError(problems)
    return Inventory(
        sites=MappingProxyType(built),
        flavors=MappingProxyType(flavors),
        eip_pools=MappingProxyType(eip_pools),
        volume_pools=tuple(volume_pools),
        volume_types=MappingProxyType(volume_types),
        regions=MappingProxyType(listed),
    )


