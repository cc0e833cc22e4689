"""RegionAndAZ: one of the requested regions is the site's, and its AZ list (if any) holds the site's AZ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from extender.framework import Candidate, Snapshot, Status, no_args
from extender.model import VMRequest

NAME = "RegionAndAZ"
REASON_REGION = "RegionAndAZ: site {site} is in region {region}, the request wants {wanted}"
MARK = "\x00"
"""Stands for the site id in a reason formatted ahead (a region or request holding it takes the slow way)."""
REASON_ZONE = "RegionAndAZ: site {site} is in {region}/{zone}, the request wants zones {wanted} of {region}"


class RegionAndAZ:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        if not request.regions:
            return None
        region, zone = candidate.region, candidate.zone
        matching = [r for r in request.regions if r.region == region]
        if not matching:
            wanted = ", ".join(r.region for r in request.regions)
            return Status(REASON_REGION.format(site=candidate.site.id, region=region, wanted=wanted), True)
        if any(not r.availability_zones or zone in r.availability_zones for r in matching):
            return None
        zones = ", ".join(z for r in matching for z in r.availability_zones)
        return Status(REASON_ZONE.format(site=candidate.site.id, region=region, zone=zone, wanted=zones), True)

    def pre_filter(self, request: VMRequest, snapshot: Snapshot) -> bool:
        return bool(request.regions)

    def filter_all(self, request: VMRequest, candidates: Sequence[Candidate],
                   snapshot: Snapshot) -> list[tuple[int, Status]]:
        """`filter` for many: a candidate passes when a selector names its region without zones, or its
        (region, zone); the reason of a region no selector names is the same for every such site."""
        any_zone = {r.region for r in request.regions if not r.availability_zones}
        pairs = {(r.region, z) for r in request.regions for z in r.availability_zones}
        named = {r.region for r in request.regions}
        wanted = ", ".join(r.region for r in request.regions)
        reasons: dict[str, tuple[str, str]] = {}
        failures = []
        for k, c in enumerate(candidates):
            region = c.region
            if region in any_zone or (region, c.zone) in pairs:
                continue
            if region in named or MARK in region or MARK in wanted:
                failures.append((k, self.filter(request, c, snapshot)))
                continue
            # REASON_REGION with everything but the site filled in once per region.
            parts = reasons.get(region)
            if parts is None:
                head, tail = REASON_REGION.format(site=MARK, region=region, wanted=wanted).split(MARK)
                parts = reasons[region] = (head, tail)
            failures.append((k, Status(parts[0] + c.site.id + parts[1], True)))
        return failures  # type: ignore[return-value]

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): in a region named without zones, or in a named zone."""
        if not request.regions:
            return None
        table = snapshot.table
        any_zone = [r.region for r in request.regions if not r.availability_zones]
        pairs = [(r.region, z) for r in request.regions for z in r.availability_zones]
        return table.region.isin(any_zone) | table.zone.isin(pairs)


def new(args: Mapping[str, Any]) -> RegionAndAZ:
    no_args(NAME, args)
    return RegionAndAZ()
