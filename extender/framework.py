"""What predicates and priorities are given and what they answer.

A predicate (filter plugin) looks at one candidate site and answers None (pass) or a `Status`
with a human reason and whether the failure is unresolvable (no preemption can help). A priority
(score plugin) gives one candidate a raw score in 0..100; the engine weighs and scales them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from extender.model import (
    EMPTY_USAGE,
    Inventory,
    NodeRef,
    Placement,
    Site,
    SiteUsage,
    VMRequest,
    summarize,
)

MAX_PLUGIN_SCORE = 100


@dataclass(frozen=True, slots=True)
class Status:
    """A failed predicate: why, and whether it can never pass for this request (no preemption)."""

    reason: str
    unresolvable: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The inventory plus everything placed, aggregated the ways the plugins look it up.

    Built once when the inventory or the placements change, never per request.
    """

    inventory: Inventory
    by_site: Mapping[str, SiteUsage] = field(default_factory=dict)
    eips_by_pool: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """EIPs placed per (region, pool name), all sites of the region together."""
    storage_by_zone: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """Volume GB placed per (region, availability zone, volume type)."""

    @classmethod
    def build(cls, inventory: Inventory, placements: list[Placement] | tuple[Placement, ...] = ()) -> Snapshot:
        by_site = summarize(placements)
        eips: dict[tuple[str, str], int] = {}
        storage: dict[tuple[str, str, str], int] = {}
        for site_id, usage in by_site.items():
            site = inventory.sites.get(site_id)
            if site is None:
                continue
            if usage.eips:
                key = (site.region, site.eip_type_name)
                eips[key] = eips.get(key, 0) + usage.eips
            for volume_type, size in usage.storage.items():
                zkey = (site.region, site.az, volume_type)
                storage[zkey] = storage.get(zkey, 0) + size
        return cls(inventory=inventory, by_site=by_site, eips_by_pool=eips, storage_by_zone=storage)

    def usage(self, site_id: str) -> SiteUsage:
        return self.by_site.get(site_id, EMPTY_USAGE)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node asked about, resolved to its site. Region and zone: node labels, else the inventory."""

    node: NodeRef
    site: Site
    usage: SiteUsage

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def region(self) -> str:
        return self.node.region or self.site.region

    @property
    def zone(self) -> str:
        return self.node.zone or self.site.az


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float: ...
