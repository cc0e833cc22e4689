"""The caps on what one request may hold, written once: the wire types, the VM request and the
allocation request declare them on their fields (msgspec checks them while decoding), and
docs/operations.md lists them (tests/test_bounds_doc.py keeps the page true).

Sized for a 5,000-node cluster (Kubernetes' tested maximum) with a fourfold margin; anything larger is
not a scheduler talking but a client gone wrong, and is refused before the engine builds anything.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

MAX_NAME = 253
"""Characters of any name or id: node, site, flavor, region, zone, pod uid, resource (a DNS subdomain's cap)."""
MAX_NODES = 20_000
"""`NodeNames` and `Nodes.items` of one /filter or /prioritize; nodes of one /preempt."""
MAX_VICTIMS = 1_000
"""Victim pods on one node of a /preempt (kubelet's own cap on pods per node is far lower)."""
MAX_FLAVORS = 64
"""Flavors one VM request or one allocation resource lists."""
MAX_RESOURCES = 32
"""Resources of one allocation's resource group."""
MAX_REPLICAS = 1_000
"""Replicas of one allocation."""
MAX_VMS_PER_ALLOCATION = 10_000
"""Replicas × VMs per replica of one allocation: the rows it writes and the size of its answer."""
MAX_ITEMS = 64
"""Entries of any other list or map of a request: regions, zones, volume types, labels, selector terms."""

Name = Annotated[str, Meta(max_length=MAX_NAME)]
"""A name or id on the wire."""

LIMITS: dict[str, tuple[int, str]] = {
    "MAX_NAME": (MAX_NAME, "characters of any name or id (node, site, flavor, region, zone, uid, resource)"),
    "MAX_NODES": (MAX_NODES, "`NodeNames`, `Nodes.items` of /filter and /prioritize; nodes of /preempt"),
    "MAX_VICTIMS": (MAX_VICTIMS, "victim pods per node of /preempt"),
    "MAX_FLAVORS": (MAX_FLAVORS, "flavors of a VM request or of an allocation resource"),
    "MAX_RESOURCES": (MAX_RESOURCES, "resources of an allocation's resource group"),
    "MAX_REPLICAS": (MAX_REPLICAS, "replicas of an allocation"),
    "MAX_VMS_PER_ALLOCATION": (MAX_VMS_PER_ALLOCATION, "replicas × VMs per replica of an allocation"),
    "MAX_ITEMS": (MAX_ITEMS, "any other list or map: regions, zones, volume types, labels, selector terms"),
}
"""Each cap with what it bounds, for the docs."""
