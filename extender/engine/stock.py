"""What each site has left: the numbers the predicates decide on, read from the same snapshot.

Nothing here computes stock: every figure is the snapshot's (`Snapshot.flavor_stock`, the EIP and
volume sums) through the capacity functions the predicates use (`extender.domain.capacity`), so what
`/v1/sites` shows and what `/filter` decides cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from msgspec import Struct

from extender.domain.capacity import eip_stock, volume_stock
from extender.domain.model import Site
from extender.engine.snapshot import Snapshot

POD = "pod"
ALLOCATION = "allocation"
RESERVATION = "reservation"
"""A pod the binder admitted that the cluster view does not show bound yet."""


class FlavorLeft(Struct):
    flavor: str
    resource_type: str
    vcpus: int
    ram: int
    total: int
    """What the hosts serving the flavor hold by the inventory alone (capped by max_count)."""
    placed: int
    """VMs placed on those hosts (any flavor that shares them)."""
    left: int
    """What the Flavor predicate sees as left."""


class EipLeft(Struct):
    pool: str
    size: int
    used: int
    """Used by the inventory's own account (outside this extender)."""
    placed: int
    """Placed through this extender, by every site drawing from the pool."""
    left: int


class VolumeLeft(Struct):
    volume_type: str
    pools: int
    capacity_gb: float
    """The zone's ceiling: Σ total × (1 − reserved%) × over-subscription (thin only) − provisioned."""
    placed_gb: int
    """Placed through this extender, by every site of the zone."""
    left_gb: float


class PlacedHere(Struct):
    kind: str
    """`pod`, `allocation` or `reservation`."""
    key: str
    """The pod uid, or the allocation's VM key `<allocation id>/<replica>/<resource>/<vm>`."""
    name: str
    """`namespace/name` of a pod, the allocation id of an allocation, "" for a reservation."""
    flavor: str
    need_eip: bool
    storage: dict[str, int]


class PlacedSummary(Struct):
    vms: int
    pods: int
    allocations: int
    """Distinct allocations with VMs here."""
    reservations: int


class SiteStock(Struct, omit_defaults=True):
    id: str
    name: str
    status: str
    available: bool
    """False when the status takes nothing (Offline, Sellout): SiteAvailability fails it whatever is left."""
    region: str
    availability_zone: str
    flavors: list[FlavorLeft]
    eip: EipLeft | None
    """The site's pool (`eip_type_name` in its region); None when it names none or the region has none."""
    volumes: list[VolumeLeft]
    placed: PlacedSummary
    placements: list[PlacedHere] | None = None
    """Every VM placed here (the single-site view only)."""


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str
    name: str


def flavors_left(snapshot: Snapshot, site: Site) -> list[FlavorLeft]:
    """Every flavor offered in the site's region, in inventory order, with the predicate's own stock."""
    found = []
    for (region, flavor_id), flavor in snapshot.inventory.flavors.items():
        if region != site.region:
            continue
        stock = snapshot.flavor_stock(site, flavor)
        found.append(FlavorLeft(flavor_id, flavor.resource_type, flavor.vcpus, flavor.ram,
                                stock.stock, stock.placed, stock.left))
    return found


def eip_left(snapshot: Snapshot, site: Site) -> EipLeft | None:
    key = (site.region, site.eip_type_name)
    pool = snapshot.inventory.eip_pools.get(key) if site.eip_type_name else None
    if pool is None:
        return None
    stock = eip_stock(pool, snapshot.eips_by_pool.get(key, 0))
    return EipLeft(pool.name, stock.size, stock.used, stock.placed, stock.left)


def volumes_left(snapshot: Snapshot, site: Site) -> list[VolumeLeft]:
    found = []
    for (region, zone, volume_type), capacity in snapshot.index.volumes.items():
        if (region, zone) != (site.region, site.az):
            continue
        stock = volume_stock(capacity, snapshot.storage_by_zone.get((region, zone, volume_type), 0))
        found.append(VolumeLeft(volume_type, capacity.pools, round(stock.capacity_gb, 3), stock.placed_gb,
                                round(stock.left_gb, 3)))
    return found


def site_stock(snapshot: Snapshot, site: Site, owners: Mapping[str, Owner], detail: bool = False) -> SiteStock:
    placements = snapshot.usage(site.id).placements
    held = [(p, owners.get(p.key, Owner(RESERVATION, ""))) for p in placements]
    kinds = [owner.kind for _, owner in held]
    summary = PlacedSummary(
        vms=len(placements),
        pods=kinds.count(POD),
        allocations=len({owner.name for _, owner in held if owner.kind == ALLOCATION}),
        reservations=kinds.count(RESERVATION),
    )
    listed = None
    if detail:
        listed = [PlacedHere(owner.kind, p.key, owner.name, p.flavor_id, p.need_eip, dict(p.storage))
                  for p, owner in held]
    return SiteStock(
        id=site.id, name=site.name, status=site.status, available=site.available, region=site.region,
        availability_zone=site.az, flavors=flavors_left(snapshot, site), eip=eip_left(snapshot, site),
        volumes=volumes_left(snapshot, site), placed=summary, placements=listed,
    )


def all_sites(snapshot: Snapshot, owners: Mapping[str, Owner]) -> list[SiteStock]:
    return [site_stock(snapshot, site, owners) for site in snapshot.inventory.sites.values()]


def left_by_site_and_flavor(snapshot: Snapshot) -> Iterator[tuple[str, str, int]]:
    """(site, flavor, left) for every flavor offered at every site: what a VM of that flavor can still
    get there, so 0 at a site whose status takes nothing."""
    for site in snapshot.inventory.sites.values():
        for flavor in flavors_left(snapshot, site):
            yield site.id, flavor.flavor, flavor.left if site.available else 0
