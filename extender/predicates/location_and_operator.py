"""LocationAndOperator: the site's country, area, province and city, and its operator, match the
request's `geo_location` and `operator` where the request names them.

Names compare case-insensitively (`Shenzhen` is `shenzhen`); the operator matches the site operator's
id or name. A site in the wrong place never becomes the right one: failures are unresolvable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.framework import Candidate, Snapshot, Status, no_args
from extender.model import VMRequest

NAME = "LocationAndOperator"
REASON_LOCATION = "LocationAndOperator: site {site} is in {field} {actual}, the request wants {wanted}"
REASON_OPERATOR = "LocationAndOperator: site {site} is run by operator {actual}, the request wants {wanted}"

GEO_FIELDS = ("country", "area", "province", "city")


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


class LocationAndOperator:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        site = candidate.site
        geo = request.geo_location
        if geo is not None:
            for name in GEO_FIELDS:
                wanted, actual = getattr(geo, name), getattr(site, name)
                if wanted and not _same(wanted, actual):
                    return Status(
                        REASON_LOCATION.format(site=site.id, field=name, actual=actual or '""', wanted=wanted),
                        unresolvable=True,
                    )
        wanted = request.operator
        if wanted and not (_same(wanted, site.operator.id) or _same(wanted, site.operator.name)):
            actual = site.operator.name or site.operator.id or '""'
            if site.operator.name and site.operator.id:
                actual = f"{site.operator.name} ({site.operator.id})"
            return Status(REASON_OPERATOR.format(site=site.id, actual=actual, wanted=wanted), unresolvable=True)
        return None

    def pre_filter(self, request: VMRequest, snapshot: Snapshot) -> bool:
        geo = request.geo_location
        return bool(request.operator) or (geo is not None and any(getattr(geo, name) for name in GEO_FIELDS))

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): in the requested place, run by the requested operator."""
        table = snapshot.table
        masks = []
        geo = request.geo_location
        if geo is not None:
            masks.extend(table.geo[name].isin([wanted.casefold()]) for name in GEO_FIELDS if (wanted := getattr(geo, name)))
        if request.operator:
            wanted = request.operator.casefold()
            masks.append(table.operator_id.isin([wanted]) | table.operator_name.isin([wanted]))
        return np.logical_and.reduce(masks) if masks else None


def new(args: Mapping[str, Any]) -> LocationAndOperator:
    no_args(NAME, args)
    return LocationAndOperator()
