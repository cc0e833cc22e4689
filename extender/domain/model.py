"""The domain: inventory (sites, hosts, flavors, pools), the VM request of a pod, what is placed.

Plain immutable values. Loading them from files lives in `inventory.py`, parsing a pod's request in
`vmrequest.py`; the engine only ever sees these types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SITE_LABEL = "site-extender.io/site"
GROUP_LABEL = "site-extender.io/group"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
VM_ANNOTATION = "site-extender.io/vm"
VM_RESOURCE = "site-extender.io/vm"
"""The extended resource a VM pod requests (kube-scheduler's `managedResources` routes it here)."""
SITE_ANNOTATION = "site-extender.io/site"
REGION_ANNOTATION = "site-extender.io/region"
ZONE_ANNOTATION = "site-extender.io/availability-zone"
FLAVOR_ANNOTATION = "site-extender.io/flavor"
"""Placement annotations written on a pod at bind (what the global scheduler wrote as the cluster name)."""

UNAVAILABLE_SITE_STATUSES = frozenset({"offline", "sellout"})

EMPTY_MAP: Mapping = MappingProxyType({})


def _empty() -> Mapping:
    return EMPTY_MAP


# --- Inventory -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flavor:
    id: str
    region: str
    vcpus: int
    ram: int
    disk: int
    resource_type: str
    operation_status: str = ""
    """`os_extra_specs` `cond:operation:status`: `abandon` sells the flavor only in the zones listed as open."""
    zone_flags: tuple[tuple[str, str], ...] = ()
    """`cond:operation:az`, e.g. `az1(normal),az2(sellout)`: (zone, flag) pairs, sorted by zone."""

    def sold_in(self, zone: str) -> bool:
        """The original's reading (`getSupportFlavorsByNode`): a zone flagged `sellout` or `abandon` does not
        sell the flavor; an `abandon`ed flavor sells only in the zones listed with another flag."""
        flag = dict(self.zone_flags).get(zone)
        if flag is None:
            return self.operation_status != "abandon"
        return flag not in ("sellout", "abandon")


@dataclass(frozen=True, slots=True)
class Host:
    """One compute host of a site (a `node_infos` entry of `site_nodes.json`)."""

    host_name: str
    total_vcpus: float
    used_vcpus: float
    total_mem: float
    used_mem: float
    total_disk: float
    used_disk: float
    resource_types: frozenset[str]
    cpu_allocation_ratio: float
    max_count: int | None


@dataclass(frozen=True, slots=True)
class Operator:
    id: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    region: str
    az: str
    status: str = "active"
    city: str = ""
    province: str = ""
    area: str = ""
    country: str = ""
    operator: Operator = Operator()
    eip_type_name: str = ""
    attributes: Mapping[str, str] = field(default_factory=_empty)
    hosts: tuple[Host, ...] = ()
    max_count: int | None = None
    """The site's cap on VMs (site_nodes `max_count`), None when unbounded."""

    @property
    def available(self) -> bool:
        return self.status.lower() not in UNAVAILABLE_SITE_STATUSES


@dataclass(frozen=True, slots=True)
class EipPool:
    region: str
    name: str
    status: str
    size: int
    used: int


@dataclass(frozen=True, slots=True)
class VolumePool:
    region: str
    availability_zone: str
    name: str
    volume_type: str
    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    max_over_subscription_ratio: float
    thin_provisioning_support: bool
    reserved_percentage: float


@dataclass(frozen=True, slots=True)
class VolumeType:
    id: str
    name: str
    region: str


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    availability_zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Inventory:
    sites: Mapping[str, Site]
    flavors: Mapping[tuple[str, str], Flavor]
    """Flavors by (region, flavor id): the same id may differ from region to region."""
    eip_pools: Mapping[tuple[str, str], EipPool]
    """EIP pools by (region, pool name)."""
    volume_pools: tuple[VolumePool, ...] = ()
    volume_types: Mapping[str, VolumeType] = field(default_factory=_empty)
    regions: Mapping[str, Region] = field(default_factory=_empty)
    _flavor_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_flavor_ids", frozenset(flavor_id for _, flavor_id in self.flavors))

    def flavor_ids(self) -> frozenset[str]:
        """Every flavor id of any region (every request is checked against them)."""
        return self._flavor_ids

    def flavor(self, region: str, flavor_id: str) -> Flavor | None:
        return self.flavors.get((region, flavor_id))


# --- The VM request of a pod -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegionSelector:
    region: str
    availability_zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GeoLocation:
    country: str = ""
    area: str = ""
    province: str = ""
    city: str = ""


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector (`matchLabels` and `matchExpressions`, all ANDed)."""

    match_labels: Mapping[str, str] = field(default_factory=_empty)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: `In`/`NotIn` on the value, `Exists`/`DoesNotExist` on the key."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for r in self.match_expressions:
            present = r.key in labels
            if r.operator == "In" and not (present and labels[r.key] in r.values):
                return False
            if r.operator == "NotIn" and present and labels[r.key] in r.values:
                return False
            if r.operator == "Exists" and not present:
                return False
            if r.operator == "DoesNotExist" and present:
                return False
            if r.operator in ("Gt", "Lt") and not (present and _compares(labels[r.key], r.operator, r.values[0])):
                return False
        return True


def _compares(value: str, operator: str, bound: str) -> bool:
    """`Gt`/`Lt` as Kubernetes (and the global scheduler) read them: both sides integers, else no match."""
    try:
        left, right = int(value), int(bound)
    except ValueError:
        return False
    return left > right if operator == "Gt" else left < right


CENTRALIZE = "centralize"
DISCRETE = "discrete"
LOCAL_STRATEGIES = (CENTRALIZE, DISCRETE)


@dataclass(frozen=True, slots=True)
class VMRequest:
    """What a VM pod asks for. `flavors` is in order of preference."""

    flavors: tuple[str, ...]
    need_eip: bool = False
    storage: Mapping[str, int] = field(default_factory=_empty)
    """Requested volume GB by volume type."""
    regions: tuple[RegionSelector, ...] = ()
    geo_location: GeoLocation | None = None
    operator: str = ""
    site_id: str = ""
    strategy: str = ""
    domain_id: str = ""
    stack_affinity: LabelSelector | None = None
    stack_antiaffinity: LabelSelector | None = None
    group: str = ""
    """The group of the pod that asks (`vmrequest.pod_group`), for the locality strategy."""


# --- What is placed ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """A VM that uses up stock at a site: a bound pod, a reservation in flight or an allocation."""

    key: str
    """Unique id: the pod uid, or an allocation id."""
    site_id: str
    flavor_id: str
    vcpus: int
    ram: int
    need_eip: bool = False
    storage: Mapping[str, int] = field(default_factory=_empty)
    group: str = ""
    """The pod's group: `vmrequest.pod_group(pod)`."""
    labels: Mapping[str, str] = field(default_factory=_empty)
    """The pod's labels, matched by the stack (anti-)affinity of later requests."""


@dataclass(slots=True)
class SiteUsage:
    """Sum of the placements at one site."""

    vms: int = 0
    vcpus: int = 0
    ram: int = 0
    eips: int = 0
    flavors: dict[str, int] = field(default_factory=dict)
    storage: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)

    def add(self, placement: Placement) -> None:
        self.vms += 1
        self.vcpus += placement.vcpus
        self.ram += placement.ram
        self.eips += 1 if placement.need_eip else 0
        self.flavors[placement.flavor_id] = self.flavors.get(placement.flavor_id, 0) + 1
        for volume_type, size in placement.storage.items():
            self.storage[volume_type] = self.storage.get(volume_type, 0) + size
        if placement.group:
            self.groups[placement.group] = self.groups.get(placement.group, 0) + 1
        self.placements.append(placement)


EMPTY_USAGE = SiteUsage()


def summarize(placements: Iterable[Placement]) -> dict[str, SiteUsage]:
    """Aggregate placements into usage per site id."""
    usage: dict[str, SiteUsage] = {}
    for placement in placements:
        usage.setdefault(placement.site_id, SiteUsage()).add(placement)
    return usage


# --- Nodes as the engine sees them -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node asked about: its name, the site it stands for, its topology labels."""

    name: str
    site_id: str
    labels: Mapping[str, str] = field(default_factory=_empty)
    known: bool = True
    """False when the node name is not known to the node cache (cache mode, not yet synced)."""

    @property
    def region(self) -> str | None:
        return self.labels.get(REGION_LABEL)

    @property
    def zone(self) -> str | None:
        return self.labels.get(ZONE_LABEL)


def node_ref(name: str, labels: Mapping[str, str] | None, known: bool = True) -> NodeRef:
    labels = labels or EMPTY_MAP
    return NodeRef(name=name, site_id=labels.get(SITE_LABEL) or name, labels=labels, known=known)
