"""What a bound pod uses up: the `Placement` of a pod on a node, and the annotations that record one.

Pure functions of (inventory, pod, node): the Kubernetes cache calls them for every bound pod, the
binder for the pod it binds, preemption for the victims it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from extender.domain.model import (
    FLAVOR_ANNOTATION,
    REGION_ANNOTATION,
    SITE_ANNOTATION,
    SITE_LABEL,
    VM_ANNOTATION,
    ZONE_ANNOTATION,
    Flavor,
    Inventory,
    NodeRef,
    Placement,
    VMRequest,
)
from extender.domain.vmrequest import parse_vm_request, pod_group, raw_vm_request
from extender.errors import VMRequestError
from extender.protocol.wire import Pod

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
"""A pod in one of these phases holds nothing any more."""


def holds_resources(pod: Pod) -> bool:
    """Bound (spec.nodeName set) and not finished: what the scheduler counts on a node, too."""
    return bool(pod.spec.nodeName) and pod.status.phase not in FINISHED_PHASES


def bound_request(pod: Pod, vm_annotation: str = VM_ANNOTATION) -> VMRequest | None:
    """The VM request of a pod that is already placed, None for a pod without one.

    Unlike a pod being scheduled, a placed pod is not validated against the inventory: it uses its
    site whatever flavor it names. A request that does not parse at all counts as no request (the
    pod could only have been bound around the extender)."""
    try:
        data = raw_vm_request(pod, vm_annotation)
        return None if data is None else parse_vm_request(data)
    except VMRequestError:
        return None


def placed_flavor(inventory: Inventory, request: VMRequest, region: str,
                  annotations: Mapping[str, str]) -> tuple[str, Flavor | None]:
    """(flavor id, flavor) a placed VM uses: the flavor written at bind, else the first acceptable one
    the region offers, else the first it asked for (unknown there: it counts as a VM, no vCPU/RAM)."""
    chosen = annotations.get(FLAVOR_ANNOTATION)
    candidates = (chosen,) if chosen else request.flavors
    for flavor_id in candidates:
        flavor = inventory.flavor(region, flavor_id)
        if flavor is not None:
            return flavor_id, flavor
    return candidates[0], None


def placement_of(inventory: Inventory, pod: Pod, node: NodeRef, request: VMRequest) -> Placement:
    """The stock `pod` uses at `node`'s site for `request`."""
    site = inventory.sites.get(node.site_id)
    region = node.region or (site.region if site else "")
    annotations = pod.metadata.annotations or {}
    flavor_id, flavor = placed_flavor(inventory, request, region, annotations)
    return Placement(
        key=pod.metadata.uid,
        site_id=node.site_id,
        flavor_id=flavor_id,
        vcpus=flavor.vcpus if flavor else 0,
        ram=flavor.ram if flavor else 0,
        need_eip=request.need_eip,
        storage=request.storage,
        group=pod_group(pod),
        labels=MappingProxyType(dict(pod.metadata.labels or {})),
    )


def pod_placement(inventory: Inventory, pod: Pod, node: NodeRef,
                  vm_annotation: str = VM_ANNOTATION) -> Placement | None:
    """The placement of a bound pod on `node`, None when it is not a VM pod or holds nothing."""
    if not holds_resources(pod):
        return None
    request = bound_request(pod, vm_annotation)
    return None if request is None else placement_of(inventory, pod, node, request)


def placement_annotations(site_id: str, region: str, zone: str, flavor_id: str) -> dict[str, str]:
    """The annotations that record a placement on its pod: site, region, zone and flavor (the flavor is
    what the pod counts as from then on)."""
    return {SITE_ANNOTATION: site_id, REGION_ANNOTATION: region, ZONE_ANNOTATION: zone, FLAVOR_ANNOTATION: flavor_id}


def site_labels(site_id: str) -> dict[str, str]:
    """The label that records a pod's site, for selectors: `kubectl get pods -l site-extender.io/site=site1`."""
    return {SITE_LABEL: site_id}


def missing_site_label(pod: Pod) -> str | None:
    """The site to label a bound pod with: the site its placement annotation names, when its label does
    not say so (an API server that did not copy the Binding's labels); None when there is nothing to do."""
    site = (pod.metadata.annotations or {}).get(SITE_ANNOTATION)
    if not site or not pod.spec.nodeName or (pod.metadata.labels or {}).get(SITE_LABEL) == site:
        return None
    return site
