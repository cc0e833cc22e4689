"""What the inventory alone decides, worked out once per inventory (never per request): per site and
resource type, what the hosts serving it offer; per zone and volume type, the volume ceiling; the
sites as columns (`SiteTable`). A placement change keeps it (`Snapshot.build` lends it on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from extender.domain.capacity import (
    ANY_TYPE,
    NO_HOSTS,
    HostCapacity,
    VolumeCapacity,
    host_capacity,
    pool_ceiling,
    serves,
)
from extender.domain.model import EMPTY_MAP, Inventory, Site
from extender.engine.sitetable import SiteTable, build_site_table


@dataclass(frozen=True, slots=True)
class SiteIndex:
    """Per site: the host capacity per resource type, and which resource types share a host."""

    capacity: Mapping[str, HostCapacity]
    """By resource type (`ANY_TYPE`: all hosts)."""
    overlaps: Mapping[str, frozenset[str]]
    """By resource type T: the resource types whose hosts include some host serving T. A VM of
    type T is taken off all of them (it may sit on any host serving T); unknown types: all."""


@dataclass(frozen=True, slots=True)
class InventoryIndex:
    """Everything the inventory alone decides, computed once per inventory."""

    sites: Mapping[str, SiteIndex] = field(default_factory=lambda: EMPTY_MAP)
    volumes: Mapping[tuple[str, str, str], VolumeCapacity] = field(default_factory=lambda: EMPTY_MAP)
    """By (region, availability zone, volume type)."""
    table: SiteTable = field(default_factory=SiteTable, compare=False)
    """The sites as columns, for the fast path (derived from the same inventory as the rest: not compared)."""

    def capacity(self, site_id: str, resource_type: str) -> HostCapacity:
        site = self.sites.get(site_id)
        return site.capacity.get(resource_type, NO_HOSTS) if site else NO_HOSTS


def resource_types(inventory: Inventory) -> frozenset[str]:
    """Every resource type a flavor or a host names, plus `ANY_TYPE`."""
    types = {f.resource_type for f in inventory.flavors.values()}
    types.update(t for s in inventory.sites.values() for h in s.hosts for t in h.resource_types)
    return frozenset(types | {ANY_TYPE})


def index_site(site: Site, types: frozenset[str]) -> SiteIndex:
    serving = {t: frozenset(i for i, h in enumerate(site.hosts) if serves(h, t)) for t in types}
    capacity = {t: host_capacity([site.hosts[i] for i in hosts]) for t, hosts in serving.items()}
    overlaps = {t: frozenset(r for r, others in serving.items() if hosts & others) for t, hosts in serving.items()}
    return SiteIndex(capacity=MappingProxyType(capacity), overlaps=MappingProxyType(overlaps))


def index_inventory(inventory: Inventory) -> InventoryIndex:
    types = resource_types(inventory)
    sites = {site_id: index_site(site, types) for site_id, site in inventory.sites.items()}
    volumes: dict[tuple[str, str, str], VolumeCapacity] = {}
    for pool in inventory.volume_pools:
        key = (pool.region, pool.availability_zone, pool.volume_type)
        known = volumes.get(key, VolumeCapacity(0, 0.0))
        volumes[key] = VolumeCapacity(known.pools + 1, known.capacity_gb + pool_ceiling(pool))
    return InventoryIndex(
        sites=MappingProxyType(sites),
        volumes=MappingProxyType(volumes),
        table=build_site_table(inventory),
    )
