"""Capacity arithmetic shared by predicates and priorities (cf. kube-scheduler's plugins/helper).

Pure functions of a site, its usage and the inventory; every division is guarded against zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from extender.model import Flavor, Host, Inventory, Site, SiteUsage


@dataclass(frozen=True, slots=True)
class FlavorStock:
    """How many VMs of one flavor a site can still take."""

    stock: int
    """What the inventory alone allows (hosts' free vCPU and RAM, and max_count)."""
    placed: int
    """VMs already placed on the hosts that serve this flavor's resource type."""
    left: int
    """What is left after the placements (never below 0)."""


def serves(host: Host, flavor: Flavor) -> bool:
    """A host serves a flavor when it lists the flavor's resource type (any host if none is named)."""
    return not flavor.resource_type or flavor.resource_type in host.resource_types


def _fit(cpu_free: float, mem_free: float, flavor: Flavor) -> int:
    return max(0, math.floor(min(cpu_free / flavor.vcpus, mem_free / flavor.ram)))


def flavor_stock(site: Site, flavor: Flavor, usage: SiteUsage, inventory: Inventory) -> FlavorStock:
    """Stock = min(Σ(total_vcpus × ratio) − Σ used_vcpus) / vcpus, (Σ total_mem − Σ used_mem) / ram)
    over the hosts serving the flavor; placements on those hosts' resource type are taken off in
    vCPU and RAM (a VM of another flavor uses the same cores); capped by `max_count`."""
    hosts = [h for h in site.hosts if serves(h, flavor)]
    cpu_free = sum(h.total_vcpus * h.cpu_allocation_ratio - h.used_vcpus for h in hosts)
    mem_free = sum(h.total_mem - h.used_mem for h in hosts)
    stock = _fit(cpu_free, mem_free, flavor)

    placed = placed_cpu = placed_mem = 0
    for placement in usage.placements:
        other = inventory.flavor(site.region, placement.flavor_id)
        if other is None or not flavor.resource_type or other.resource_type == flavor.resource_type:
            placed += 1
            placed_cpu += placement.vcpus
            placed_mem += placement.ram
    left = _fit(cpu_free - placed_cpu, mem_free - placed_mem, flavor)

    caps = [c for c in (site.max_count, _hosts_max_count(hosts)) if c is not None]
    if caps:
        cap = min(caps)
        stock = min(stock, cap)
        left = min(left, max(0, cap - usage.vms))
    return FlavorStock(stock=stock, placed=placed, left=left)


def _hosts_max_count(hosts: list[Host]) -> int | None:
    counts = [h.max_count for h in hosts]
    if not counts or any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None)


def eip_free(site: Site, inventory: Inventory, placed_in_pool: int) -> tuple[int, int] | None:
    """(size, free) of the EIP pool the site draws from, or None when the region has no such pool."""
    pool = inventory.eip_pools.get((site.region, site.eip_type_name))
    if pool is None:
        return None
    return pool.size, pool.size - pool.used - placed_in_pool


def volume_capacity(inventory: Inventory, region: str, zone: str, volume_type: str) -> float:
    """Σ over the zone's pools of the type of total × max_over_subscription_ratio − provisioned."""
    return sum(
        p.total_capacity_gb * p.max_over_subscription_ratio - p.provisioned_capacity_gb
        for p in inventory.volume_pools
        if p.region == region and p.availability_zone == zone and p.volume_type == volume_type
    )


def free_share(free: float, total: float) -> float:
    """Free fraction in 0..1; 0 when there is no capacity at all."""
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, free / total))
