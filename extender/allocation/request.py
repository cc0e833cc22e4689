"""The global scheduler's allocation request (`POST /v1/allocations`), validated into domain values.

The body keeps the original API's shape and names (`resource_group`, `flavor_id`, `need_eip`,
`location_strategy`, ...). Every problem is reported at once with its field path
(`allocation.resource_group.resources[0].flavors[0].flavor_id`), as the policy loader does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec
from msgspec import Struct

from extender.domain.model import (
    CENTRALIZE,
    DISCRETE,
    EMPTY_MAP,
    GeoLocation,
    RegionSelector,
    VMRequest,
)
from extender.errors import ExtenderError

LOCATION_STRATEGIES = (CENTRALIZE, DISCRETE)
REGION_ALONE = "alone"
REGION_STRATEGIES = (REGION_ALONE,)
RESOURCE_TYPES = ("vm",)
MAX_REPLICAS = 10_000
MAX_VMS_PER_REPLICA = 1_000
MAX_RESOURCES = 64

_MSGSPEC_PATH = re.compile(r"^(.*) - at `\$\.?(.*)`$")


class AllocationRequestError(ExtenderError):
    """An allocation request that is not valid: every problem as (field path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in problems))


# --- The wire shape ----------------------------------------------------------------------------------


class _Flavor(Struct):
    flavor_id: str


class _Resource(Struct):
    name: str
    flavors: list[_Flavor]
    resource_type: str = "vm"
    storage: dict[str, int] | None = None
    need_eip: bool = False
    count: int = 1


class _ResourceGroup(Struct):
    name: str
    resources: list[_Resource]


class _Region(Struct):
    region: str
    availability_zone: list[str] | None = None


class _Geo(Struct):
    country: str = ""
    area: str = ""
    province: str = ""
    city: str = ""


class _Strategy(Struct):
    location_strategy: str = ""
    region_strategy: str = ""


class _Selector(Struct):
    regions: list[_Region] | None = None
    geo_location: _Geo | None = None
    operator: str = ""
    node_id: str = ""
    strategy: _Strategy | None = None


class _Allocation(Struct):
    resource_group: _ResourceGroup
    selector: _Selector | None = None
    replicas: int = 1
    domain_id: str = ""


class _Body(Struct):
    allocation: _Allocation


# --- Domain values -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind of VM of a resource group: `count` of them per replica, any of `flavors` (preferred first)."""

    name: str
    flavors: tuple[str, ...]
    storage: Mapping[str, int] = field(default_factory=lambda: EMPTY_MAP)
    """GB per volume type, for each VM."""
    need_eip: bool = False
    count: int = 1


@dataclass(frozen=True, slots=True)
class AllocationRequest:
    group_name: str
    resources: tuple[Resource, ...]
    replicas: int
    location_strategy: str = CENTRALIZE
    region_alone: bool = False
    regions: tuple[RegionSelector, ...] = ()
    geo_location: GeoLocation | None = None
    operator: str = ""
    site_id: str = ""
    domain_id: str = ""

    def vm_request(self, resource: Resource, group: str = "") -> VMRequest:
        """What one VM of `resource` asks of a site, as a pod's VM request would."""
        return VMRequest(
            flavors=resource.flavors,
            need_eip=resource.need_eip,
            storage=resource.storage,
            regions=self.regions,
            geo_location=self.geo_location,
            operator=self.operator,
            site_id=self.site_id,
            strategy=self.location_strategy,
            domain_id=self.domain_id,
            group=group,
        )

    @property
    def vms_per_replica(self) -> int:
        return sum(r.count for r in self.resources)


def _decode_problem(exc: msgspec.MsgspecError) -> tuple[str, str]:
    text = str(exc)
    match = _MSGSPEC_PATH.match(text)
    if match:
        return match.group(2), match.group(1)
    return "", text


def parse_allocation_request(
    body: bytes | Mapping[str, Any],
    known_flavors: Collection[str],
    known_volume_types: Collection[str] | None = None,
) -> AllocationRequest:
    """Decode and validate an allocation request; raise `AllocationRequestError` with every problem.

    `known_volume_types` None (an inventory without volume types) accepts any storage type.
    """
    try:
        if isinstance(body, (bytes, bytearray, memoryview)):
            raw = msgspec.json.decode(body, type=_Body)
        else:
            raw = msgspec.convert(body, _Body)
    except msgspec.MsgspecError as exc:
        raise AllocationRequestError([_decode_problem(exc)]) from None

    problems: list[tuple[str, str]] = []
    alloc = raw.allocation
    at = "allocation"
    if alloc.replicas <= 0:
        problems.append((f"{at}.replicas", f"must be > 0, got {alloc.replicas}"))
    elif alloc.replicas > MAX_REPLICAS:
        problems.append((f"{at}.replicas", f"at most {MAX_REPLICAS}, got {alloc.replicas}"))

    group = alloc.resource_group
    if not group.resources:
        problems.append((f"{at}.resource_group.resources", "must list at least one resource"))
    elif len(group.resources) > MAX_RESOURCES:
        problems.append((f"{at}.resource_group.resources", f"at most {MAX_RESOURCES} resources, got {len(group.resources)}"))
    resources = []
    for i, res in enumerate(group.resources):
        where = f"{at}.resource_group.resources[{i}]"
        if res.resource_type not in RESOURCE_TYPES:
            problems.append((f"{where}.resource_type", f"unknown resource type {res.resource_type!r}, expected one of {', '.join(RESOURCE_TYPES)}"))
        if res.count <= 0:
            problems.append((f"{where}.count", f"must be > 0, got {res.count}"))
        if not res.flavors:
            problems.append((f"{where}.flavors", "must list at least one flavor"))
        for j, flavor in enumerate(res.flavors):
            if flavor.flavor_id not in known_flavors:
                problems.append((f"{where}.flavors[{j}].flavor_id", f"unknown flavor {flavor.flavor_id!r}"))
        for volume_type, size in (res.storage or {}).items():
            if known_volume_types is not None and volume_type not in known_volume_types:
                known = ", ".join(sorted(known_volume_types))
                problems.append((f"{where}.storage.{volume_type}", f"unknown volume type {volume_type!r}; known: {known}"))
            if size <= 0:
                problems.append((f"{where}.storage.{volume_type}", f"must be > 0 GB, got {size}"))
        resources.append(Resource(
            name=res.name,
            flavors=tuple(f.flavor_id for f in res.flavors),
            storage=MappingProxyType(dict(res.storage or {})),
            need_eip=res.need_eip,
            count=res.count,
        ))
    per_replica = sum(r.count for r in resources)
    if per_replica > MAX_VMS_PER_REPLICA:
        problems.append((f"{at}.resource_group.resources", f"at most {MAX_VMS_PER_REPLICA} VMs per replica, got {per_replica}"))

    selector = alloc.selector or _Selector()
    strategy = selector.strategy or _Strategy()
    location = strategy.location_strategy or CENTRALIZE
    if location not in LOCATION_STRATEGIES:
        problems.append((f"{at}.selector.strategy.location_strategy",
                         f"unknown strategy {location!r}, expected one of {', '.join(LOCATION_STRATEGIES)}"))
    if strategy.region_strategy and strategy.region_strategy not in REGION_STRATEGIES:
        problems.append((f"{at}.selector.strategy.region_strategy",
                         f"unknown strategy {strategy.region_strategy!r}, expected {' or '.join(REGION_STRATEGIES)} (or none)"))
    if problems:
        raise AllocationRequestError(problems)

    geo = selector.geo_location
    return AllocationRequest(
        group_name=group.name,
        resources=tuple(resources),
        replicas=alloc.replicas,
        location_strategy=location,
        region_alone=strategy.region_strategy == REGION_ALONE,
        regions=tuple(RegionSelector(r.region, tuple(r.availability_zone or ())) for r in selector.regions or ()),
        geo_location=GeoLocation(geo.country, geo.area, geo.province, geo.city) if geo else None,
        operator=selector.operator,
        site_id=selector.node_id,
        domain_id=alloc.domain_id,
    )
