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
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from extender import strict
from extender.bounds import MAX_FLAVORS, MAX_ITEMS, MAX_REPLICAS, MAX_RESOURCES, MAX_VMS_PER_ALLOCATION, Name

from extender.domain.model import (
    CENTRALIZE,
    DISCRETE,
    EMPTY_MAP,
    GeoLocation,
    LabelSelector,
    LabelSelectorRequirement,
    RegionSelector,
    VMRequest,
)
from extender.errors import ExtenderError

LOCATION_STRATEGIES = (CENTRALIZE, DISCRETE)
REGION_ALONE = "alone"
REGION_STRATEGIES = (REGION_ALONE,)
RESOURCE_TYPES = ("vm",)
SPOT_REFUSED = ("spot instances cannot be placed here: no site reports spot capacity (the original's site"
                " spot_resources, which it never filled either), so a spot VM would fit nowhere;"
                " ask for the flavor without `spot`")
Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]

_MSGSPEC_PATH = re.compile(r"^(.*) - at `\$\.?(.*)`$")

UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""An allocation id the body may carry: the original's `UUIDCheckPattern` (lower-case hex), anchored."""
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.\u4e00-\u9fa5-]{1,64}$")
"""The original's `NamePattern` with its length 1..64: group, resource and label names and values."""
# The original's label operators (its `labels.Operator`) and what each is among Kubernetes' own.
LABEL_OPERATORS = {"in": "In", "=": "In", "==": "In", "notin": "NotIn", "!=": "NotIn",
                   "exists": "Exists", "!": "DoesNotExist", "gt": "Gt", "lt": "Lt"}
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class AllocationRequestError(ExtenderError):
    """An allocation request that is not valid: every problem as (field path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in problems))


# --- The wire shape ----------------------------------------------------------------------------------


class _Flavor(Struct, forbid_unknown_fields=True):
    flavor_id: Name
    spot: dict[Name, Any] | None = None


class _Resource(Struct, forbid_unknown_fields=True):
    name: Name
    flavors: Annotated[list[_Flavor], Meta(max_length=MAX_FLAVORS)]
    resource_type: Name = "vm"
    storage: Annotated[dict[Name, int], Meta(max_length=MAX_ITEMS)] | None = None
    need_eip: bool = False
    count: Int32 = 1


class _ResourceGroup(Struct, forbid_unknown_fields=True):
    name: Name
    resources: Annotated[list[_Resource], Meta(max_length=MAX_RESOURCES)]
    labels: Annotated[dict[Name, Name], Meta(max_length=MAX_ITEMS)] | None = None


class _Region(Struct, forbid_unknown_fields=True):
    region: Name
    availability_zone: Annotated[list[Name], Meta(max_length=MAX_ITEMS)] | None = None


class _Geo(Struct, forbid_unknown_fields=True):
    country: Name = ""
    area: Name = ""
    province: Name = ""
    city: Name = ""


class _Strategy(Struct, forbid_unknown_fields=True):
    location_strategy: Name = ""
    region_strategy: Name = ""


class _LabelRequirement(Struct, forbid_unknown_fields=True):
    key: Name
    operator: Name
    values: Annotated[list[Name], Meta(max_length=MAX_ITEMS)] | None = None


class _Selector(Struct, forbid_unknown_fields=True):
    regions: Annotated[list[_Region], Meta(max_length=MAX_ITEMS)] | None = None
    geo_location: _Geo | None = None
    operator: Name = ""
    node_id: Name = ""
    strategy: _Strategy | None = None
    stack_affinity: Annotated[list[_LabelRequirement], Meta(max_length=MAX_ITEMS)] | None = None
    stack_antiaffinity: Annotated[list[_LabelRequirement], Meta(max_length=MAX_ITEMS)] | None = None


class _Allocation(Struct, forbid_unknown_fields=True):
    resource_group: _ResourceGroup
    id: Name = ""
    selector: _Selector | None = None
    replicas: Int32 = 1
    domain_id: Name = ""


class _Body(Struct, forbid_unknown_fields=True):
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
    location_strategy: str = DISCRETE
    region_alone: bool = False
    regions: tuple[RegionSelector, ...] = ()
    geo_location: GeoLocation | None = None
    operator: str = ""
    site_id: str = ""
    domain_id: str = ""
    allocation_id: str = ""
    """The body's `allocation.id` (a uuid), or empty: the service then names the allocation."""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)
    """`resource_group.labels`: carried by every VM placed, for later requests' stack (anti-)affinity."""
    stack_affinity: LabelSelector | None = None
    stack_antiaffinity: LabelSelector | None = None

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
            stack_affinity=self.stack_affinity,
            stack_antiaffinity=self.stack_antiaffinity,
            group=group,
        )

    @property
    def vms_per_replica(self) -> int:
        return sum(r.count for r in self.resources)


def _decode_problem(exc: msgspec.MsgspecError) -> tuple[str, str]:
    text = strict.explain(exc, _Body) if isinstance(exc, msgspec.ValidationError) else str(exc)
    match = _MSGSPEC_PATH.match(text)
    if match:
        return match.group(2), match.group(1)
    return "", text


def _label_key_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes label key (`[prefix/]name`), or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r}: the prefix must be a DNS subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (f"label key {key!r}: the name must be 1 to 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit")
    return None


def _label_selector(requirements: list[_LabelRequirement] | None, where: str,
                    problems: list[tuple[str, str]]) -> LabelSelector | None:
    """The original's `[{key, operator, values}]` (all must match) as a label selector; problems
    as its `labels.NewRequirement` finds them."""
    if not requirements:
        return None
    expressions = []
    for i, r in enumerate(requirements):
        at = f"{where}[{i}]"
        values = tuple(r.values or ())
        if problem := _label_key_problem(r.key):
            problems.append((f"{at}.key", problem))
        operator = LABEL_OPERATORS.get(r.operator)
        if operator is None:
            problems.append((f"{at}.operator", f"unknown operator {r.operator!r}, expected one of "
                                               f"{', '.join(LABEL_OPERATORS)}"))
            continue
        if r.operator in ("in", "notin") and not values:
            problems.append((f"{at}.values", f"operator {r.operator!r} needs at least one value"))
        elif r.operator in ("=", "==", "!=", "gt", "lt") and len(values) != 1:
            problems.append((f"{at}.values", f"operator {r.operator!r} needs exactly one value, got {len(values)}"))
        elif r.operator in ("exists", "!") and values:
            problems.append((f"{at}.values", f"operator {r.operator!r} takes no values, got {len(values)}"))
        for j, value in enumerate(values):
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                problems.append((f"{at}.values[{j}]", f"{value!r} is not a label value (at most 63 letters, digits,"
                                                      " '-', '_' or '.', starting and ending with a letter or digit)"))
            elif operator in ("Gt", "Lt") and not re.fullmatch(r"-?[0-9]+", value):
                problems.append((f"{at}.values[{j}]", f"operator {r.operator!r} compares integers, got {value!r}"))
        expressions.append(LabelSelectorRequirement(r.key, operator, values))
    return LabelSelector(match_expressions=tuple(expressions))


def _name_problem(name: str) -> str | None:
    if NAME_PATTERN.match(name):
        return None
    return f"{name!r} must be 1 to 64 letters, digits, '_', '.', '-' or CJK characters"


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
    except UnicodeDecodeError as exc:
        raise AllocationRequestError([("", f"body is not valid JSON: a string is not UTF-8 ({exc.reason})")]) from None
    except RecursionError:
        raise AllocationRequestError([("", "body is not valid JSON: nested too deeply")]) from None

    problems: list[tuple[str, str]] = []
    alloc = raw.allocation
    at = "allocation"
    if alloc.id and not UUID_PATTERN.match(alloc.id):
        problems.append((f"{at}.id", f"{alloc.id!r} is not a uuid (8-4-4-4-12 lower-case hex digits);"
                                     " leave it out to get a new one"))
    if alloc.replicas <= 0:
        problems.append((f"{at}.replicas", f"must be > 0, got {alloc.replicas}"))
    elif alloc.replicas > MAX_REPLICAS:
        problems.append((f"{at}.replicas", f"at most {MAX_REPLICAS}, got {alloc.replicas}"))

    group = alloc.resource_group
    if problem := _name_problem(group.name):
        problems.append((f"{at}.resource_group.name", problem))
    for key, value in (group.labels or {}).items():
        if problem := _name_problem(key):
            problems.append((f"{at}.resource_group.labels", f"label key {problem}"))
        if problem := _name_problem(value):
            problems.append((f"{at}.resource_group.labels.{key}", f"label value {problem}"))
    if not group.resources:
        problems.append((f"{at}.resource_group.resources", "must list at least one resource"))
    elif len(group.resources) > MAX_RESOURCES:
        problems.append((f"{at}.resource_group.resources", f"at most {MAX_RESOURCES} resources, got {len(group.resources)}"))
    resources = []
    for i, res in enumerate(group.resources):
        where = f"{at}.resource_group.resources[{i}]"
        if problem := _name_problem(res.name):
            problems.append((f"{where}.name", problem))
        if res.resource_type not in RESOURCE_TYPES:
            problems.append((f"{where}.resource_type", f"unknown resource type {res.resource_type!r}, expected one of {', '.join(RESOURCE_TYPES)}"))
        if res.count <= 0:
            problems.append((f"{where}.count", f"must be > 0, got {res.count}"))
        if not res.flavors:
            problems.append((f"{where}.flavors", "must list at least one flavor"))
        for j, flavor in enumerate(res.flavors):
            if flavor.flavor_id not in known_flavors:
                problems.append((f"{where}.flavors[{j}].flavor_id", f"unknown flavor {flavor.flavor_id!r}"))
            if flavor.spot is not None:
                problems.append((f"{where}.flavors[{j}].spot", SPOT_REFUSED))
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
    if 0 < alloc.replicas <= MAX_REPLICAS and alloc.replicas * per_replica > MAX_VMS_PER_ALLOCATION:
        problems.append((f"{at}.replicas", f"{alloc.replicas} replicas of {per_replica} VMs each is"
                         f" {alloc.replicas * per_replica} VMs, at most {MAX_VMS_PER_ALLOCATION} in one allocation"))

    selector = alloc.selector or _Selector()
    strategy = selector.strategy or _Strategy()
    # As the original's LocationAndOperator strategy: anything but `centralize` spreads, so no
    # location_strategy at all spreads too.
    location = strategy.location_strategy or DISCRETE
    if location not in LOCATION_STRATEGIES:
        problems.append((f"{at}.selector.strategy.location_strategy",
                         f"unknown strategy {location!r}, expected one of {', '.join(LOCATION_STRATEGIES)}"))
    if strategy.region_strategy and strategy.region_strategy not in REGION_STRATEGIES:
        problems.append((f"{at}.selector.strategy.region_strategy",
                         f"unknown strategy {strategy.region_strategy!r}, expected {' or '.join(REGION_STRATEGIES)} (or none)"))
    affinity = _label_selector(selector.stack_affinity, f"{at}.selector.stack_affinity", problems)
    antiaffinity = _label_selector(selector.stack_antiaffinity, f"{at}.selector.stack_antiaffinity", problems)
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
        allocation_id=alloc.id,
        labels=MappingProxyType(dict(group.labels or {})),
        stack_affinity=affinity,
        stack_antiaffinity=antiaffinity,
    )
