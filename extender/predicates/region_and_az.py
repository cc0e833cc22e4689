"""RegionAndAZ: one of the requested regions is the node's, and its AZ list (if any) holds the node's AZ.

Where the node is: its topology labels, else its site's region and zone. Unresolvable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.domain.model import VMRequest
from extender.engine.framework import Fail, no_args
from extender.engine.places import Places

NAME = "RegionAndAZ"
REASON_REGION = "RegionAndAZ: site {site} is in region {region}, the request wants {wanted}"
REASON_ZONE = "RegionAndAZ: site {site} is in {region}/{zone}, the request wants zones {wanted} of {region}"


class RegionAndAZ:
    name = NAME

    def check(self, request: VMRequest, at: Places) -> tuple[Fail, ...]:
        selectors = request.regions
        if not selectors:
            return ()
        any_zone = [s.region for s in selectors if not s.availability_zones]
        zones = [(s.region, zone) for s in selectors for zone in s.availability_zones]

        def zones_of(region: str) -> str:
            return ", ".join(zone for s in selectors if s.region == region for zone in s.availability_zones)

        return (
            Fail(~at.region.isin([s.region for s in selectors]), REASON_REGION, by=at.region,
                 fields=lambda region: {"region": region, "wanted": ", ".join(s.region for s in selectors)}),
            Fail(~(at.region.isin(any_zone) | at.zone.isin(zones)), REASON_ZONE, by=at.zone,
                 fields=lambda zone: {"region": zone[0], "zone": zone[1], "wanted": zones_of(zone[0])}),
        )


def new(args: Mapping[str, Any]) -> RegionAndAZ:
    no_args(NAME, args)
    return RegionAndAZ()
