"""Capacity arithmetic shared by predicates and priorities (cf. kube-scheduler's plugins/helper).

Pure functions, no state: what hosts offer (`host_capacity`), what a flavor, a volume pool or an EIP
pool has left once placements are taken off (`flavor_stock`, `pool_ceiling`, `volume_stock`,
`eip_stock`), free shares (`free_share`), guarded against zero capacity. What is worked out once per
inventory from them is `extender.engine.index`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from extender.domain.model import EipPool, Flavor, Host, VolumePool

ANY_TYPE = ""
"""The resource type of a flavor that names none: every host of the site serves it."""


# --- Compute: flavors on hosts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostCapacity:
    """What the hosts of one site that serve one resource type offer, by the inventory alone."""

    hosts: int = 0
    cpu_total: float = 0.0
    """Σ total_vcpus × cpu_allocation_ratio."""
    cpu_free: float = 0.0
    """cpu_total − Σ used_vcpus."""
    mem_total: float = 0.0
    mem_free: float = 0.0
    """Σ total_mem − Σ used_mem."""
    max_count: int | None = None
    """Σ of the hosts' max_count; None when some host is unbounded."""


NO_HOSTS = HostCapacity()


@dataclass(frozen=True, slots=True)
class Placed:
    """What the placements take from one pool of hosts."""

    count: int = 0
    vcpus: int = 0
    ram: int = 0


NOTHING_PLACED = Placed()


@dataclass(frozen=True, slots=True)
class FlavorStock:
    """How many VMs of one flavor a site can still take."""

    stock: int
    """What the inventory alone allows (hosts' free vCPU and RAM, capped by max_count)."""
    placed: int
    """VMs already placed on the hosts that serve this flavor's resource type."""
    left: int
    """What is left after the placements (never below 0)."""


def serves(host: Host, resource_type: str) -> bool:
    """A host serves a resource type when it lists it; every host serves `ANY_TYPE`."""
    return resource_type == ANY_TYPE or resource_type in host.resource_types


def host_capacity(hosts: tuple[Host, ...] | list[Host]) -> HostCapacity:
    """Sum the hosts' capacity: vCPU × allocation ratio, memory, and their max_count."""
    if not hosts:
        return NO_HOSTS
    counts = [h.max_count for h in hosts]
    cpu_total = sum(h.total_vcpus * h.cpu_allocation_ratio for h in hosts)
    mem_total = sum(h.total_mem for h in hosts)
    return HostCapacity(
        hosts=len(hosts),
        cpu_total=cpu_total,
        cpu_free=cpu_total - sum(h.used_vcpus for h in hosts),
        mem_total=mem_total,
        mem_free=mem_total - sum(h.used_mem for h in hosts),
        max_count=None if any(c is None for c in counts) else sum(c for c in counts if c is not None),
    )


def _fit(cpu_free: float, mem_free: float, flavor: Flavor) -> int:
    return max(0, math.floor(min(cpu_free / flavor.vcpus, mem_free / flavor.ram)))


def flavor_stock(capacity: HostCapacity, placed: Placed, flavor: Flavor,
                 site_max_count: int | None = None, site_vms: int = 0) -> FlavorStock:
    """Stock = min((Σ total_vcpus × ratio − Σ used_vcpus) / vcpus, (Σ total_mem − Σ used_mem) / ram)
    over the hosts serving the flavor. What is placed there is taken off in vCPU and RAM (a VM of
    another flavor uses the same cores), then the hosts' and the site's max_count cap the count."""
    stock = _fit(capacity.cpu_free, capacity.mem_free, flavor)
    left = _fit(capacity.cpu_free - placed.vcpus, capacity.mem_free - placed.ram, flavor)
    if capacity.max_count is not None:
        stock = min(stock, capacity.max_count)
        left = min(left, max(0, capacity.max_count - placed.count))
    if site_max_count is not None:
        stock = min(stock, site_max_count)
        left = min(left, max(0, site_max_count - site_vms))
    return FlavorStock(stock=stock, placed=placed.count, left=left)


# --- Volumes ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolumeCapacity:
    """The GB a zone's pools of one volume type can still provision, by the inventory alone."""

    pools: int
    capacity_gb: float


def pool_ceiling(pool: VolumePool) -> float:
    """GB a Cinder pool can still provision (see `extender.predicates.volume` for the why):
    thin pools (thin_provisioning_support and ratio >= 1): total × (1 − reserved%) × ratio − provisioned;
    thick pools: total × (1 − reserved%) − provisioned (over-subscription does not apply)."""
    ratio = pool.max_over_subscription_ratio
    if not pool.thin_provisioning_support or ratio < 1:
        ratio = 1.0
    usable = pool.total_capacity_gb * (1 - pool.reserved_percentage / 100)
    return usable * ratio - pool.provisioned_capacity_gb


@dataclass(frozen=True, slots=True)
class VolumeStock:
    capacity_gb: float
    placed_gb: int
    left_gb: float


def volume_stock(capacity: VolumeCapacity, placed_gb: int) -> VolumeStock:
    return VolumeStock(capacity.capacity_gb, placed_gb, capacity.capacity_gb - placed_gb)


# --- EIPs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EipStock:
    size: int
    used: int
    placed: int

    @property
    def free(self) -> int:
        """What the inventory alone leaves free."""
        return self.size - self.used

    @property
    def left(self) -> int:
        return self.size - self.used - self.placed


def eip_stock(pool: EipPool, placed: int) -> EipStock:
    return EipStock(size=pool.size, used=pool.used, placed=placed)


# --- Shares -------------------------------------------------------------------------------------------


def free_share(free: float, total: float) -> float:
    """Free fraction in 0..1; 0 when there is no capacity at all."""
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, free / total))


def number(value: float) -> str:
    """A quantity for a human reason: `12`, `1.5`, never `12.0` or `1.50000001`."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"
