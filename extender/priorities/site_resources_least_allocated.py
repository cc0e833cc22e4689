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

import numpy as np

from extender.domain.capacity import NOTHING_PLACED, free_share
from extender.domain.model import Flavor, Site, VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot
from extender.predicates.volume import volume_capacity, volume_left
from extender.priorities.flavor import first_in_stock_rank

NAME = "SiteResourcesLeastAllocated"
RESOURCES = ("cpu", "memory", "storage", "eip")
DEFAULT_WEIGHTS: Mapping[str, float] = {"memory": 10, "cpu": 10, "storage": 5, "eip": 1}
SHARES_MEMO = NAME + ".shares"
"""`Snapshot.site_column` key of `compute_shares` per flavor."""


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
        shares = dict(zip(("cpu", "memory"), compute_shares(snapshot, site.id, found[1])))
        if request.storage:
            shares["storage"] = storage_share(request, snapshot, site)
        if request.need_eip:
            shares["eip"] = eip_share(snapshot, site)
        return shares

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float:
        shares = self.shares(request, candidate, snapshot)
        if shares is None:
            return 0.0
        total = sum(self.weights[r] for r in shares)
        if total <= 0:
            return 0.0
        return MAX_PLUGIN_SCORE * sum(self.weights[r] * share for r, share in shares.items()) / total

    def site_scores(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """`score` for every site: the same shares and sums, on columns."""
        resources = ["cpu", "memory"]
        if request.storage:
            resources.append("storage")
        if request.need_eip:
            resources.append("eip")
        total = sum(self.weights[r] for r in resources)
        size = len(snapshot.table)
        if total <= 0:
            return np.zeros(size)
        rank = first_in_stock_rank(request.flavors, snapshot)
        cpu, memory = np.zeros(size), np.zeros(size)
        for k, flavor_id in enumerate(request.flavors):
            chosen = rank == k
            if chosen.any():
                cpu[chosen] = shares_column(snapshot, flavor_id, 0)[chosen]
                memory[chosen] = shares_column(snapshot, flavor_id, 1)[chosen]
        values = [cpu, memory]
        if request.storage:
            values.append(storage_column(request, snapshot))
        if request.need_eip:
            values.append(eip_column(snapshot))
        weighted = np.zeros(size)  # added one by one from 0, as `sum` does
        for resource, value in zip(resources, values):
            weighted = weighted + self.weights[resource] * value
        scores = MAX_PLUGIN_SCORE * weighted / total
        scores[rank == len(request.flavors)] = 0.0
        return scores


def free_share_column(free: np.ndarray, total: np.ndarray) -> np.ndarray:
    """`free_share` of each entry."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.minimum(1.0, np.maximum(0.0, free / total))
    return np.where(total > 0, share, 0.0)


def shares_column(snapshot: Snapshot, flavor_id: str, which: int) -> np.ndarray:
    """Per site: `compute_shares` (`which` 0: cpu, 1: memory) of the flavor `flavor_id` of the site's
    region; NaN where the region has no such flavor."""
    flavor_of = snapshot.inventory.flavors.get

    def share(snap: Snapshot, site: Site) -> float:
        flavor = flavor_of((site.region, flavor_id))
        return np.nan if flavor is None else compute_shares(snap, site.id, flavor)[which]

    return snapshot.site_column((SHARES_MEMO, flavor_id, which), share)


def storage_column(request: VMRequest, snapshot: Snapshot) -> np.ndarray:
    """`storage_share` of every site."""
    parts = np.zeros(len(snapshot.table))  # added one by one from 0, as `sum` does
    for volume_type, wanted in request.storage.items():
        ceiling = volume_capacity(snapshot, volume_type)  # -inf without a pool: no capacity, share 0
        parts = parts + free_share_column(volume_left(snapshot, volume_type) - wanted, ceiling)
    return parts / len(request.storage)


def eip_column(snapshot: Snapshot) -> np.ndarray:
    """`eip_share` of every site."""
    def build() -> np.ndarray:
        placed = snapshot.eips_by_pool
        shares = {key: free_share(pool.size - pool.used - placed.get(key, 0) - 1, pool.size)
                  for key, pool in snapshot.inventory.eip_pools.items()}
        return snapshot.table.eip_pool.spread(shares, 0.0)
    return snapshot.derived((NAME, "eip"), build)


def compute_shares(snapshot: Snapshot, site_id: str, flavor: Flavor) -> tuple[float, float]:
    """(cpu, memory) free share of the hosts serving `flavor` after placing one more (pod-independent)."""
    pool = snapshot.index.capacity(site_id, flavor.resource_type)
    placed = snapshot.placed.get((site_id, flavor.resource_type), NOTHING_PLACED)
    return (free_share(pool.cpu_free - placed.vcpus - flavor.vcpus, pool.cpu_total),
            free_share(pool.mem_free - placed.ram - flavor.ram, pool.mem_total))


def storage_share(request: VMRequest, snapshot: Snapshot, site: Site) -> float:
    """Mean free share of the requested volume types in the site's zone after placing the volumes."""
    parts = []
    for volume_type, wanted in request.storage.items():
        key = (site.region, site.az, volume_type)
        capacity = snapshot.index.volumes.get(key)
        ceiling = capacity.capacity_gb if capacity else 0.0
        parts.append(free_share(ceiling - snapshot.storage_by_zone.get(key, 0) - wanted, ceiling))
    return sum(parts) / len(parts)


def eip_share(snapshot: Snapshot, site: Site) -> float:
    """Free share of the site's EIP pool after taking one address (0 without a pool)."""
    eip_pool = snapshot.inventory.eip_pools.get((site.region, site.eip_type_name))
    if eip_pool is None:
        return 0.0
    placed_eips = snapshot.eips_by_pool.get((site.region, site.eip_type_name), 0)
    return free_share(eip_pool.size - eip_pool.used - placed_eips - 1, eip_pool.size)


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
