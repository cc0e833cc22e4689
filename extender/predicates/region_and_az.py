"""RegionAndAZ: one of the requested regions is the site's, and its AZ list (if any) holds the site's AZ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.framework import Candidate, Snapshot, Status, no_args
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


def new(args: Mapping[str, Any]) -> RegionAndAZ:
    no_args(NAME, args)
    return RegionAndAZ()
