"""Read the VM request of a pod: the annotation `site-extender.io/vm` (JSON or YAML) or
`spec.virtualMachine` where the cluster's API has it.

Errors name the field path (`$.flavors[0].flavorID`) so that the pod's FailedScheduling event tells
the user exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Collection
from types import MappingProxyType
from typing import Annotated, Any

import msgspec
import yaml
from msgspec import Meta, Struct, field

from extender.domain.model import (
    GROUP_LABEL,
    LOCAL_STRATEGIES,
    VM_ANNOTATION,
    GeoLocation,
    LabelSelector,
    LabelSelectorRequirement,
    RegionSelector,
    VMRequest,
)
from extender.errors import VMRequestError
from extender.protocol.wire import Pod

MAX_REQUEST_BYTES = 64 * 1024
"""An annotation larger than this is refused before parsing (annotations total 256 KiB at most)."""

LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

PositiveGB = Annotated[int, Meta(gt=0)]


class _FlavorChoice(Struct, forbid_unknown_fields=False):
    flavor_id: str = field(name="flavorID")


class _RegionSelector(Struct):
    region: str
    availability_zone: list[str] | None = None


class _GeoLocation(Struct):
    country: str = ""
    area: str = ""
    province: str = ""
    city: str = ""


class _Selector(Struct):
    regions: list[_RegionSelector] | None = None
    geo_location: _GeoLocation | None = None
    operator: str = ""
    site_id: str = ""


class _Strategy(Struct):
    local_strategy: str = field(name="localStrategy", default="")


class _CommonInfo(Struct):
    selector: _Selector | None = None
    strategy: _Strategy | None = None


class _Requirement(Struct):
    key: str
    operator: str
    values: list[str] | None = None


class _LabelSelector(Struct):
    match_labels: dict[str, str] | None = field(name="matchLabels", default=None)
    match_expressions: list[_Requirement] | None = field(name="matchExpressions", default=None)


class _VM(Struct):
    flavors: Annotated[list[_FlavorChoice], Meta(min_length=1)]
    need_eip: bool = field(name="needEIP", default=False)
    storage: dict[str, PositiveGB] | None = None
    resource_common_info: _CommonInfo | None = field(name="resourceCommonInfo", default=None)
    domain_id: str = ""
    stack_affinity: _LabelSelector | None = None
    stack_antiaffinity: _LabelSelector | None = None


def _label_selector(raw: _LabelSelector | None, path: str) -> LabelSelector | None:
    if raw is None:
        return None
    requirements = []
    for i, r in enumerate(raw.match_expressions or ()):
        if r.operator not in LABEL_SELECTOR_OPERATORS:
            raise VMRequestError(
                f"unknown operator {r.operator!r}, expected one of {', '.join(LABEL_SELECTOR_OPERATORS)}"
                f" - at `$.{path}.matchExpressions[{i}].operator`"
            )
        requirements.append(LabelSelectorRequirement(r.key, r.operator, tuple(r.values or ())))
    return LabelSelector(MappingProxyType(dict(raw.match_labels or {})), tuple(requirements))


REASON_TOO_DEEP = "nested too deeply"


def raw_vm_request(pod: Pod, annotation: str = VM_ANNOTATION) -> Any:
    """The undecoded VM request of `pod`, or None when the pod is not a VM pod."""
    text = (pod.metadata.annotations or {}).get(annotation)
    if text is None:
        return pod.spec.virtualMachine
    if len(text) > MAX_REQUEST_BYTES:
        raise VMRequestError(f"{len(text)} bytes, more than the {MAX_REQUEST_BYTES} allowed")
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        pass
    except RecursionError:
        raise VMRequestError(REASON_TOO_DEEP) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise VMRequestError(f"neither JSON nor YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise VMRequestError(REASON_TOO_DEEP) from None


def parse_vm_request(
    data: Any,
    known_flavors: Collection[str] | None = None,
    known_volume_types: Collection[str] | None = None,
) -> VMRequest:
    """Validate `data` into a `VMRequest`.

    `known_flavors` / `known_volume_types`, when given, make an id that no region offers an error:
    such a request can never be placed, and saying so beats failing every site one by one.
    """
    if not isinstance(data, dict):
        raise VMRequestError(f"expected an object, got {type(data).__name__}")
    try:
        vm = msgspec.convert(data, _VM)
    except msgspec.ValidationError as exc:
        raise VMRequestError(str(exc)) from None
    except RecursionError:
        raise VMRequestError(REASON_TOO_DEEP) from None

    flavors = tuple(choice.flavor_id for choice in vm.flavors)
    if known_flavors is not None:
        for i, flavor_id in enumerate(flavors):
            if flavor_id not in known_flavors:
                raise VMRequestError(f"unknown flavor {flavor_id!r} - at `$.flavors[{i}].flavorID`")
    storage = dict(vm.storage or {})
    if known_volume_types is not None:
        for volume_type in storage:
            if volume_type not in known_volume_types:
                raise VMRequestError(f"unknown volume type {volume_type!r} - at `$.storage.{volume_type}`")

    info = vm.resource_common_info or _CommonInfo()
    selector = info.selector or _Selector()
    strategy = (info.strategy or _Strategy()).local_strategy
    if strategy and strategy not in LOCAL_STRATEGIES:
        raise VMRequestError(
            f"unknown strategy {strategy!r}, expected one of {', '.join(LOCAL_STRATEGIES)}"
            " - at `$.resourceCommonInfo.strategy.localStrategy`"
        )
    geo = selector.geo_location
    return VMRequest(
        flavors=flavors,
        need_eip=vm.need_eip,
        storage=MappingProxyType(storage),
        regions=tuple(
            RegionSelector(r.region, tuple(r.availability_zone or ())) for r in selector.regions or ()
        ),
        geo_location=GeoLocation(geo.country, geo.area, geo.province, geo.city) if geo else None,
        operator=selector.operator,
        site_id=selector.site_id,
        strategy=strategy,
        domain_id=vm.domain_id,
        stack_affinity=_label_selector(vm.stack_affinity, "stack_affinity"),
        stack_antiaffinity=_label_selector(vm.stack_antiaffinity, "stack_antiaffinity"),
    )


def pod_group(pod: Pod) -> str:
    """The group a pod belongs to for the locality strategy: its label `site-extender.io/group`,
    else the uid of its controller (the owner reference with `controller: true`), else "".

    The label wins because it is the user's explicit word and survives a Deployment rollout, which
    replaces the controlling ReplicaSet (and so its uid). The same function fills `Placement.group`
    for bound pods, so the pod being scheduled and those already placed compare alike.
    """
    group = (pod.metadata.labels or {}).get(GROUP_LABEL)
    if group:
        return group
    for owner in pod.metadata.ownerReferences or ():
        if owner.controller and owner.uid:
            return owner.uid
    return ""
