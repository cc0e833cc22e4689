"""SiteResourcesLeastAllocated: prefer the site with the most left after placing the VM.

The score is 100 × the weighted mean of the free shares after placing the best flavor in stock
(`flavor.first_in_stock`), as kube-scheduler's NodeResourcesLeastAllocated does for nodes:
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
from typing import Any, NamedTuple

import numpy as np

from extender.domain.capacity import NOTHING_PLACED, free_share
from extender.domain.model import Site, VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, per_site
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot
from extender.predicates.eip_availability import eip_pool
from extender.predicates.flavor import first_in_stock
from extender.predicates.volume import zone_volume

NAME = "SiteResourcesLeastAllocated"
RESOURCES = ("cpu", "memory", "storage", "eip")
DEFAULT_WEIGHTS: Mapping[str, float] = {"memory": 10, "cpu": 10, "storage": 5, "eip": 1}


class Shares(NamedTuple):
    cpu: float
    memory: float


@per_site
def shares_after(snapshot: Snapshot, site: Site, region: str, flavor_id: str) -> Shares:
    """Free share of vCPU and RAM of the hosts serving the flavor after placing one more (NaN when the
    region has no such flavor)."""
    flavor = snapshot.inventory.flavor(region, flavor_id)
    if flavor is None:
        return Shares(np.nan, np.nan)
    pool = snapshot.index.capacity(site.id, flavor.resource_type)
    placed = snapshot.placed.get((site.id, flavor.resource_type), NOTHING_PLACED)
    return Shares(free_share(pool.cpu_free - placed.vcpus - flavor.vcpus, pool.cpu_total),
                  free_share(pool.mem_free - placed.ram - flavor.ram, pool.mem_total))


def free_shares(free: np.ndarray, total: np.ndarray) -> np.ndarray:
    """`free_share` of each entry."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.minimum(1.0, np.maximum(0.0, free / total))
    return np.where(total > 0, share, 0.0)


class SiteResourcesLeastAllocated:
    name = NAME

    def __init__(self, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> None:
        self.weights = dict(weights)

    def score(self, request: VMRequest, at: Places) -> np.ndarray | float:
        rank = first_in_stock(request.flavors, at)  # the flavor the VM would get
        cpu, memory = np.zeros(at.size), np.zeros(at.size)
        for k, flavor_id in enumerate(request.flavors):
            if (chosen := rank == k).any():
                shares = at.fact(shares_after, flavor_id)
                cpu[chosen], memory[chosen] = shares.cpu[chosen], shares.memory[chosen]
        free = {"cpu": cpu, "memory": memory}
        if request.storage:
            volumes = [at.fact(zone_volume, t) for t in request.storage]
            free["storage"] = sum((free_shares(v.left - wanted, v.capacity)  # -inf without a pool: share 0
                                   for v, wanted in zip(volumes, request.storage.values())), np.zeros(at.size))
            free["storage"] /= len(request.storage)
        if request.need_eip:
            pool = at.fact(eip_pool)
            free["eip"] = free_shares(pool.left - 1.0, pool.size)
        total = sum(self.weights[r] for r in free)
        if total <= 0:
            return 0.0
        weighted = sum((self.weights[r] * share for r, share in free.items()), np.zeros(at.size))
        scores = MAX_PLUGIN_SCORE * weighted / total
        scores[rank == len(request.flavors)] = 0.0  # no flavor in stock (the Flavor predicate fails it)
        return scores


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
