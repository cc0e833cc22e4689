"""What a site node advertises and what a VM pod requests, as extended resources kube-scheduler counts.

kube-scheduler picks preemption victims with its own plugins (NodeResourcesFit) before it asks the
extender, so it must see a site fill up. A site node advertises the stock arithmetic of
`extender.domain.capacity.flavor_stock` as extended resources, and a VM pod requests its flavor's
share of them:

- the whole site (every host): `site-extender.io/vcpu` (Σ total_vcpus × cpu_allocation_ratio −
  used_vcpus), `site-extender.io/ram-mb` (Σ total_mem − used_mem, in MB as the inventory counts) and
  `site-extender.io/instances` (the site's max_count);
- per resource type T the hosts serve: `site-extender.io/vcpu.T`, `.../ram-mb.T` and `.../instances.T`
  (the hosts' summed max_count) over the hosts serving T.

A VM count with no max_count is bounded by the vCPUs (a VM takes at least one), so every figure is
finite. Both sides are a relaxation of the extender's rules, never stricter: a node always has at
least what the extender would allow there, a pod requests at most what its VM will use. kube-scheduler
may then pass a site the extender rejects (the extender says why), but never rejects one it would
take. Where the two agree exactly (one flavor, or flavors of one size, on hosts of one resource type)
a full site looks full to kube-scheduler and DefaultPreemption proposes victims; docs/preemption.md
says where they part and why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from extender.domain.capacity import ANY_TYPE, HostCapacity, host_capacity, serves
from extender.domain.model import VM_ANNOTATION, Flavor, Inventory, Site, VMRequest

DOMAIN = "site-extender.io"
VM_RESOURCE = VM_ANNOTATION
"""`site-extender.io/vm: 1`: what sends a pod to the extender (the scheduler's managedResources).
Nodes do not advertise it (`ignoredByScheduler`)."""
VCPU, RAM_MB, VMS = "vcpu", "ram-mb", "instances"
KINDS = (VCPU, RAM_MB, VMS)

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_MAX_NAME = 63
"""A resource name after the domain is a Kubernetes qualified name: at most 63 characters."""


def resource_name(kind: str, resource_type: str = ANY_TYPE) -> str | None:
    """`site-extender.io/<kind>` for the whole site, `site-extender.io/<kind>.<type>` for one resource
    type; None for a type that cannot be part of a resource name (it is then counted in the whole
    site's figures only, on both sides)."""
    if resource_type == ANY_TYPE:
        return f"{DOMAIN}/{kind}"
    name = f"{kind}.{resource_type}"
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        return None
    return f"{DOMAIN}/{name}"


def _figures(capacity: HostCapacity, max_count: int | None) -> tuple[int, int, int]:
    """(vCPU, RAM MB, VMs) a pool of hosts offers, whole units, never negative."""
    vcpus = max(0, math.floor(capacity.cpu_free))
    ram = max(0, math.floor(capacity.mem_free))
    vms = vcpus if max_count is None else min(max(0, max_count), vcpus)
    return vcpus, ram, vms


def node_resources(site: Site) -> dict[str, int]:
    """What the site's node advertises (capacity and allocatable), by the inventory alone: the whole
    site, then each resource type its hosts serve. Placed VMs are not taken off here: kube-scheduler
    subtracts the requests of the pods bound to the node."""
    figures = {ANY_TYPE: _figures(host_capacity(site.hosts), site.max_count)}
    types = sorted({t for host in site.hosts for t in host.resource_types} - {ANY_TYPE})
    for resource_type in types:
        capacity = host_capacity([h for h in site.hosts if serves(h, resource_type)])
        figures[resource_type] = _figures(capacity, capacity.max_count)
    advertised: dict[str, int] = {}
    for resource_type, values in figures.items():
        for kind, value in zip(KINDS, values):
            name = resource_name(kind, resource_type)
            if name is not None:
                advertised[name] = value
    return advertised


def candidate_flavors(request: VMRequest, inventory: Inventory) -> list[Flavor]:
    """Every definition of the flavors the request accepts, in the regions it may go to (all regions
    when it names none)."""
    regions = {selector.region for selector in request.regions}
    wanted = set(request.flavors)
    return [flavor for (region, flavor_id), flavor in inventory.flavors.items()
            if flavor_id in wanted and (not regions or region in regions)]


def vm_requests(request: VMRequest, inventory: Inventory) -> dict[str, int]:
    """What a VM pod's container requests (and limits: extended resources need both equal).

    One VM at one site, plus the smallest vCPU and RAM of the flavors it accepts (each figure on its
    own: the pod is never asked for more than the flavor it gets); per resource type too when every
    flavor it accepts has the same one. No flavor it names is offered where it may go: the count only
    (the extender rejects every site and says why)."""
    wanted: dict[str, int] = {VM_RESOURCE: 1}
    flavors = candidate_flavors(request, inventory)
    if not flavors:
        return {**wanted, resource_name(VMS): 1}  # type: ignore[dict-item]
    types = {flavor.resource_type for flavor in flavors}
    pools = {ANY_TYPE} | (types if len(types) == 1 else set())
    figures = (min(f.vcpus for f in flavors), min(f.ram for f in flavors), 1)
    for pool in sorted(pools):
        for kind, value in zip(KINDS, figures):
            name = resource_name(kind, pool)
            if name is not None and value > 0:
                wanted[name] = value
    return wanted


def container_resources(wanted: Mapping[str, int]) -> dict[str, dict[str, str]]:
    """`resources` of a container that asks for `wanted`: requests and limits alike, as strings."""
    quantities = {name: str(value) for name, value in wanted.items()}
    return {"requests": dict(quantities), "limits": dict(quantities)}

