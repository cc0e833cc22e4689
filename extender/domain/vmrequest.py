"""Read the VM request of a pod: the annotation `site-extender.io/vm` (JSON or YAML) or
`spec.virtualMachine` where the cluster's API has it (Arktos).

The schema is written once, below, as msgspec Structs: it validates both places, and
`vmrequest_docs` makes the published JSON Schema and docs/vm-request.md from it. The names are those
of the global scheduler's Arktos fork (CentaurusInfra/global-resource-scheduler,
`staging/src/k8s.io/api/core/v1/types.go`: `VirtualMachine`, `ResourceCommonInfo`, `ResourceSelector`,
`ResourceRegion`, `ResourceFlavor`, `ResourceSpot`), with Arktos's own spelling `availablityZone`;
`storage`, `domain_id`, `stack_affinity`, `stack_antiaffinity` and `selector.site_id` are this
extender's additions. An unknown field is an error naming the nearest known one, so a typo never
drops a constraint.

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

from extender import strict
from extender.bounds import MAX_FLAVORS, MAX_ITEMS, Name
from extender.domain.model import (
    GROUP_LABEL,
    LOCAL_STRATEGIES,
    VM_ANNOTATION,
    VM_RESOURCE,
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

Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
PositiveGB = Annotated[int, Meta(gt=0, le=2**31 - 1)]
Names = Annotated[list[Name], Meta(max_length=MAX_ITEMS)]


def _doc(text: str) -> Meta:
    return Meta(description=text)


# --- The schema ---------------------------------------------------------------------------------------


class Spot(Struct, forbid_unknown_fields=True):
    """Spot terms of a flavor (Arktos `ResourceSpot`): accepted and checked, not used for placement."""

    max_price: Annotated[float, _doc("Highest price per hour.")] = field(name="maxPrice", default=0.0)
    spot_duration_hours: Annotated[Int32, _doc("Hours of one spot period.")] = field(
        name="spotDurationHours", default=0)
    spot_duration_count: Annotated[Int32, _doc("Number of spot periods.")] = field(
        name="spotDurationCount", default=0)
    interruption_policy: Annotated[str, _doc("What happens when the spot ends.")] = field(
        name="interruptionPolicy", default="")


class FlavorChoice(Struct, forbid_unknown_fields=True):
    """One acceptable flavor (Arktos `ResourceFlavor`)."""

    flavor_id: Annotated[Name, _doc("A flavor id of the inventory (`flavors.json`).")] = field(name="flavorID")
    spot: Annotated[Spot | None, _doc("Spot terms (Arktos).")] = None


class RegionChoice(Struct, forbid_unknown_fields=True):
    """A region the VM may go to, and optionally its zones (Arktos `ResourceRegion`)."""

    region: Annotated[Name, _doc("Region name (the node label `topology.kubernetes.io/region`).")]
    availablity_zone: Annotated[Names | None, _doc(
        "Zones of the region the VM may go to (Arktos's spelling); none: any zone of the region.")] = field(
        name="availablityZone", default=None)
    availability_zone: Annotated[Names | None, _doc(
        "Deprecated spelling of `availablityZone` (this extender's first versions); set one, not both.")] = None


class GeoLocationChoice(Struct, forbid_unknown_fields=True):
    """Where the VM may go; each field set must equal the site's (Arktos `ResourceGeoLocation`)."""

    city: Annotated[Name, _doc("Site city.")] = ""
    province: Annotated[Name, _doc("Site province.")] = ""
    area: Annotated[Name, _doc("Site area.")] = ""
    country: Annotated[Name, _doc("Site country.")] = ""


class Strategy(Struct, forbid_unknown_fields=True):
    """How VMs of one group spread (Arktos `ResourceStrategy`)."""

    local_strategy: Annotated[str, _doc(
        "`centralize` packs the group's VMs on few sites, `discrete` spreads them; none: no preference.")] = field(
        name="localStrategy", default="")


class Selector(Struct, forbid_unknown_fields=True):
    """Which sites may take the VM (Arktos `ResourceSelector`)."""

    geo_location: Annotated[GeoLocationChoice | None, _doc("Location the site must have.")] = field(
        name="geoLocation", default=None)
    regions: Annotated[Annotated[list[RegionChoice], Meta(max_length=MAX_ITEMS)] | None, _doc(
        "Regions (and zones) the VM may go to; none: any region.")] = None
    operator: Annotated[Name, _doc("Network operator the site must have (its `operator.name`).")] = ""
    strategy: Annotated[Strategy | None, _doc("Spreading of the VM's group.")] = None
    site_id: Annotated[Name, _doc("The one site the VM must go to (an extension of this extender).")] = ""
    geo_location_deprecated: Annotated[GeoLocationChoice | None, _doc(
        "Deprecated spelling of `geoLocation`; set one, not both.")] = field(name="geo_location", default=None)


class CommonInfo(Struct, forbid_unknown_fields=True):
    """Placement constraints (Arktos `ResourceCommonInfo`)."""

    selector: Annotated[Selector | None, _doc("Which sites may take the VM.")] = None
    count: Annotated[Int32, _doc("Arktos's VM count: accepted; one pod is one VM.")] = 0
    strategy: Annotated[Strategy | None, _doc(
        "Deprecated place of `selector.strategy` (this extender's first versions); set one, not both.")] = None


class Requirement(Struct, forbid_unknown_fields=True):
    """A label selector requirement (Kubernetes `LabelSelectorRequirement`)."""

    key: Annotated[Name, _doc("Label key.")]
    operator: Annotated[str, _doc("In, NotIn, Exists or DoesNotExist.")]
    values: Annotated[Names | None, _doc("Values for In and NotIn.")] = None


class LabelSelectorSpec(Struct, forbid_unknown_fields=True):
    """A Kubernetes label selector over the labels of VMs already placed (all terms ANDed)."""

    match_labels: Annotated[Annotated[dict[Name, Name], Meta(max_length=MAX_ITEMS)] | None, _doc(
        "Labels that must all be equal.")] = field(name="matchLabels", default=None)
    match_expressions: Annotated[Annotated[list[Requirement], Meta(max_length=MAX_ITEMS)] | None, _doc(
        "Requirements that must all hold.")] = field(name="matchExpressions", default=None)


class VirtualMachine(Struct, forbid_unknown_fields=True):
    """The VM a pod asks for (Arktos `VirtualMachine`): the annotation `site-extender.io/vm` holds it
    as JSON or YAML, Arktos clusters as the pod's `spec.virtualMachine`."""

    flavors: Annotated[list[FlavorChoice], Meta(min_length=1, max_length=MAX_FLAVORS), _doc(
        "Acceptable flavors, in order of preference (at least one).")]
    need_eip: Annotated[bool, _doc("The VM needs an elastic IP from its region's pool.")] = field(
        name="needEIP", default=False)
    resource_common_info: Annotated[CommonInfo | None, _doc("Placement constraints.")] = field(
        name="resourceCommonInfo", default=None)
    storage: Annotated[Annotated[dict[Name, PositiveGB], Meta(max_length=MAX_ITEMS)] | None, _doc(
        "Volume GB by volume type (`volume_types.json`), each > 0 (an extension of this extender).")] = None
    domain_id: Annotated[Name, _doc(
        "The tenant domain, for sites exclusive to domains (an extension of this extender).")] = ""
    stack_affinity: Annotated[LabelSelectorSpec | None, _doc(
        "Prefer sites holding VMs whose labels match (an extension of this extender).")] = None
    stack_antiaffinity: Annotated[LabelSelectorSpec | None, _doc(
        "Avoid sites holding VMs whose labels match (an extension of this extender).")] = None
    # Arktos's fields that do not bear on placement: accepted so that an Arktos VM reads as it is.
    name: Annotated[str, _doc("Arktos: the VM's name (not used for placement).")] = ""
    image: Annotated[str, _doc("Arktos: image (not used for placement).")] = ""
    resources: Annotated[Any, _doc("Arktos: compute resources (not used for placement).")] = None
    resources_allocated: Annotated[Any, _doc("Arktos (not used for placement).")] = field(
        name="resourcesAllocated", default=None)
    resize_policy: Annotated[Any, _doc("Arktos (not used for placement).")] = field(
        name="resizePolicy", default=None)
    volume_mounts: Annotated[Any, _doc("Arktos (not used for placement).")] = field(
        name="volumeMounts", default=None)
    image_pull_policy: Annotated[str, _doc("Arktos (not used for placement).")] = field(
        name="imagePullPolicy", default="")
    key_pair_name: Annotated[str, _doc("Arktos: key pair to log in (not used for placement).")] = field(
        name="keyPairName", default="")
    public_key: Annotated[str, _doc("Arktos (not used for placement).")] = field(name="publicKey", default="")
    user_data: Annotated[str, _doc("Arktos: base64 user data (not used for placement).")] = field(
        name="userData", default="")
    trusted_image_certificate: Annotated[list[str] | None, _doc("Arktos (not used for placement).")] = field(
        name="trustedImageCertificate", default=None)
    shutdown_behavior: Annotated[str, _doc("Arktos (not used for placement).")] = field(
        name="shutdownBehavior", default="")
    boot_volume: Annotated[str, _doc("Arktos (not used for placement).")] = field(name="bootVolume", default="")
    power_spec: Annotated[str, _doc("Arktos (not used for placement).")] = field(name="powerSpec", default="")
    volume_devices: Annotated[Any, _doc("Arktos (not used for placement).")] = field(
        name="volumeDevices", default=None)
    cloud_init_user_data_script: Annotated[str, _doc("Arktos (not used for placement).")] = field(
        name="cloudInitUserDataScript", default="")
    security_group_id: Annotated[str, _doc("Arktos (not used for placement).")] = field(
        name="securityGroupId", default="")


# --- Reading it -----------------------------------------------------------------------------------------

REASON_TOO_DEEP = "nested too deeply"
REASON_NO_REQUEST = ("the pod requests the resource {resource} but carries no VM request: "
                     "set the annotation {annotation} (or spec.virtualMachine){hint}")


def requests_vm_resource(pod: Pod) -> bool:
    """Whether a container of `pod` requests (or limits) the extended resource `site-extender.io/vm`."""
    for container in (*(pod.spec.containers or ()), *(pod.spec.initContainers or ())):
        resources = container.resources
        if resources is not None and (VM_RESOURCE in (resources.requests or {}) or VM_RESOURCE in (resources.limits or {})):
            return True
    return False


def raw_vm_request(pod: Pod, annotation: str = VM_ANNOTATION) -> Any:
    """The undecoded VM request of `pod`, or None when the pod is not a VM pod.

    A pod that requests the resource `site-extender.io/vm` is a VM pod even without a request: that
    is an error (with a hint when an annotation's key is close to the right one), never a plain pod."""
    annotations = pod.metadata.annotations or {}
    text = annotations.get(annotation)
    if text is None:
        if pod.spec.virtualMachine is not None or not requests_vm_resource(pod):
            return pod.spec.virtualMachine
        close = strict.nearest(annotation, list(annotations))
        hint = f"; the pod has the annotation {close}: a typo?" if close else ""
        raise VMRequestError(REASON_NO_REQUEST.format(resource=VM_RESOURCE, annotation=annotation, hint=hint))
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


def _label_selector(raw: LabelSelectorSpec | None, path: str) -> LabelSelector | None:
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


def _one_of(new: Any, old: Any, new_name: str, old_name: str, path: str) -> Any:
    """The value of a field that has an older spelling: either, never both."""
    if new is not None and old is not None:
        raise VMRequestError(f"{new_name} and its deprecated spelling {old_name} are both set: keep {new_name}"
                             f" - at `{path}`")
    return new if new is not None else old


def decode_vm(data: Any) -> VirtualMachine:
    """`data` checked against the schema; `VMRequestError` names the field (and the nearest known one)."""
    if not isinstance(data, dict):
        raise VMRequestError(f"expected an object, got {type(data).__name__}")
    try:
        return msgspec.convert(data, VirtualMachine)
    except msgspec.ValidationError as exc:
        raise VMRequestError(strict.explain(exc, VirtualMachine)) from None
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
    vm = decode_vm(data)
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

    info = vm.resource_common_info or CommonInfo()
    selector = info.selector or Selector()
    at = "$.resourceCommonInfo"
    strategy_spec = _one_of(selector.strategy, info.strategy, "selector.strategy", "strategy", at)
    strategy = (strategy_spec or Strategy()).local_strategy
    if strategy and strategy not in LOCAL_STRATEGIES:
        where = "selector.strategy" if selector.strategy is not None else "strategy"
        raise VMRequestError(
            f"unknown strategy {strategy!r}, expected one of {', '.join(LOCAL_STRATEGIES)}"
            f" - at `{at}.{where}.localStrategy`"
        )
    geo = _one_of(selector.geo_location, selector.geo_location_deprecated, "geoLocation", "geo_location",
                  f"{at}.selector")
    regions = tuple(
        RegionSelector(r.region, tuple(_one_of(r.availablity_zone, r.availability_zone, "availablityZone",
                                               "availability_zone", f"{at}.selector.regions[{i}]") or ()))
        for i, r in enumerate(selector.regions or ())
    )
    return VMRequest(
        flavors=flavors,
        need_eip=vm.need_eip,
        storage=MappingProxyType(storage),
        regions=regions,
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
