"""RegionAndAZ: one of the requested regions is the site's, and its AZ list (if any) holds the site's AZ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from extender.framework import Candidate, Snapshot, Status, no_args, reason_parts
from extender.model import VMRequest

NAME = "RegionAndAZ"
REASON_REGION = "RegionAndAZ: site {site} is in region {region}, the request wants {wanted}"
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

    def explain(self, request: VMRequest, candidates: Sequence[Candidate], snapshot: Snapshot) -> list[str]:
        """The reasons `filter` gives candidates that fail it; the reason of a region no selector
        names is formatted once per region."""
        wanted = ", ".join(r.region for r in request.regions)
        named = {r.region for r in request.regions}
        parts: dict[str, tuple[str, str] | None] = {}
        found = []
        append = found.append
        for c in candidates:
            region = c.region
            shared = parts.get(region, False)
            if shared is False:
                shared = parts[region] = None if region in named else reason_parts(REASON_REGION, region=region,
                                                                                  wanted=wanted)
            append(shared[0] + c.site.id + shared[1] if shared else self.filter(request, c, snapshot).reason)  # type: ignore[union-attr]
        return found

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
