"""SiteResourcesLeastAllocated: prefer the site with the most left after placing the VM.

The score is 100 × the weighted mean of the free shares after placing the best flavor in stock
(`Snapshot.first_in_stock`), as kube-scheduler's NodeResourcesLeastAllocated does for nodes:
- cpu: (free vCPU × ratio − placed − flavor vcpus) / total, over the hosts serving the flavor;
- memory: the same with RAM;
- storage: per requested volume type, (ceiling − placed − requested) / ceiling in the site's zone,
  averaged over the types;
- eip: (size − used − placed − 1) / size of the site's pool.
Storage and eip count only when the request asks for them: a VM without volumes is not steered by
volume pools it does not use. Default weights (args `resources`): memory 10, cpu 10, storage 5, eip 1.
No flavor in stock scores 0 (the site fails the Flavor predicate anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.capacity import NOTHING_PLACED, free_share
from extender.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot
from extender.model import VMRequest

NAME = "SiteResourcesLeastAllocated"
RESOURCES = ("cpu", "memory", "storage", "eip")
DEFAULT_WEIGHTS: Mapping[str, float] = {"memory": 10, "cpu": 10, "storage": 5, "eip": 1}


class SiteResourcesLeastAllocated:
    name = NAME

    def __init__(self, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        self.weights = dict(weights)

    def shares(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> dict[str, float] | None:
        """Free share after placing, by resource (only those the request uses); None: no flavor fits."""
        site = candidate.site
        found = snapshot.first_in_stock(request.flavors, site, candidate.region)
        if found is None:
            return None
        flavor = found[1]
        pool = snapshot.index.capacity(site.id, flavor.resource_type)
        placed = snapshot.placed.get((site.id, flavor.resource_type), NOTHING_PLACED)
        shares = {
            "cpu": free_share(pool.cpu_free - placed.vcpus - flavor.vcpus, pool.cpu_total),
            "memory": free_share(pool.mem_free - placed.ram - flavor.ram, pool.mem_total),
        }
        if request.storage:
            parts = []
            for volume_type, wanted in request.storage.items():
                key = (site.region, site.az, volume_type)
                capacity = snapshot.index.volumes.get(key)
                ceiling = capacity.capacity_gb if capacity else 0.0
                parts.append(free_share(ceiling - snapshot.storage_by_zone.get(key, 0) - wanted, ceiling))
            shares["storage"] = sum(parts) / len(parts)
        if request.need_eip:
            eip_pool = snapshot.inventory.eip_pools.get((site.region, site.eip_type_name))
            if eip_pool is not None:
                placed_eips = snapshot.eips_by_pool.get((site.region, site.eip_type_name), 0)
                shares["eip"] = free_share(eip_pool.size - eip_pool.used - placed_eips - 1, eip_pool.size)
            else:
                shares["eip"] = 0.0
        return shares

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float:
        shares = self.shares(request, candidate, snapshot)
        if shares is None:
            return 0.0
        total = sum(self.weights[r] for r in shares)
        if total <= 0:
            return 0.0
        return MAX_PLUGIN_SCORE * sum(self.weights[r] * share for r, share in shares.items()) / total


def new(args: Mapping[str, Any]) -> SiteResourcesLeastAllocated:
    """args: `resources: {cpu, memory, storage, eip}` weights (numbers >= 0, at least one > 0)."""
    unknown = sorted(set(args) - {"resources"})
    if unknown:
        raise ValueError(f"unknown arg {', '.join(unknown)}; known: resources")
    given = args.get("resources", {})
    if not isinstance(given, Mapping):
        raise ValueError(f"resources: expected a map of {', '.join(RESOURCES)} to weights")
    problems = [f"resources.{k}: unknown resource; known: {', '.join(RESOURCES)}" for k in given if k not in RESOURCES]
    for key, weight in given.items():
        if key in RESOURCES and (isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0):
            problems.append(f"resources.{key}: must be a number >= 0, got {weight!r}")
    weights = {**DEFAULT_WEIGHTS, **given}
    if not problems and not any(weights[r] > 0 for r in RESOURCES):
        problems.append("resources: at least one weight must be > 0")
    if problems:
        raise ValueError("; ".join(problems))
    return SiteResourcesLeastAllocated(weights)
