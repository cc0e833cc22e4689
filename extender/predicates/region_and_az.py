"""RegionAndAZ: one of the requested regions is the site's, and its AZ list (if any) holds the site's AZ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import VMRequest
from extender.engine.framework import Candidate, Snapshot, Status, no_args, reason_parts

NAME = "RegionAndAZ"
REASON_REGION = "RegionAndAZ: site {site} is in region {region}, the request wants {wanted}"
REASON_ZONE = "RegionAndAZ: site {site} is in {region}/{zone}, the request wants zones {wanted} of {region}"


class RegionAndAZ:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        if not request.regions:
            return None
        reason = _reason(request, candidate.region, candidate.zone, candidate.site.id)
        return None if reason is None else Status(reason, True)

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> np.ndarray:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail
        it: the reason of a region no selector names is formatted once per region, then joined to the
        site ids a column at a time."""
        table = snapshot.table
        wanted = ", ".join(r.region for r in request.regions)
        named = {r.region for r in request.regions}
        found, served = table.shared_reasons(table.region, positions, lambda region: None if region in named
                                             else reason_parts(REASON_REGION, region=region, wanted=wanted))
        for k in np.flatnonzero(~served).tolist():  # a named region without the site's zone
            site = table.sites[positions[k]]
            found[k] = _reason(request, site.region, site.az, site.id)
        return found

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): in a region named without zones, or in a named zone."""
        if not request.regions:
            return None
        table = snapshot.table
        any_zone = [r.region for r in request.regions if not r.availability_zones]
        pairs = [(r.region, z) for r in request.regions for z in r.availability_zones]
        return table.region.isin(any_zone) | table.zone.isin(pairs)


def _reason(request: VMRequest, region: str, zone: str, site_id: str) -> str | None:
    """Why a node in `region`/`zone` (of site `site_id`) fails the request's selectors; None: it passes."""
    matching = [r for r in request.regions if r.region == region]
    if not matching:
        wanted = ", ".join(r.region for r in request.regions)
        return REASON_REGION.format(site=site_id, region=region, wanted=wanted)
    if any(not r.availability_zones or zone in r.availability_zones for r in matching):
        return None
    zones = ", ".join(z for r in matching for z in r.availability_zones)
    return REASON_ZONE.format(site=site_id, region=region, zone=zone, wanted=zones)


def new(args: Mapping[str, Any]) -> RegionAndAZ:
    no_args(NAME, args)
    return RegionAndAZ()
