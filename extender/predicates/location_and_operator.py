"""LocationAndOperator: the site's country, area, province and city, and its operator, match the
request's `geo_location` and `operator` where the request names them.

Names compare case-insensitively (`Shenzhen` is `shenzhen`); the operator matches the site operator's
id or name. A site in the wrong place never becomes the right one: failures are unresolvable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import Operator, Site, VMRequest
from extender.engine.framework import Candidate, Snapshot, Status, no_args, reason_parts

NAME = "LocationAndOperator"
REASON_LOCATION = "LocationAndOperator: site {site} is in {field} {actual}, the request wants {wanted}"
REASON_OPERATOR = "LocationAndOperator: site {site} is run by operator {actual}, the request wants {wanted}"

GEO_FIELDS = ("country", "area", "province", "city")


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _operator(operator: Operator) -> str:
    """An operator as a reason names it: `name (id)`, or whichever it has."""
    if operator.name and operator.id:
        return f"{operator.name} ({operator.id})"
    return operator.name or operator.id or '""'


class LocationAndOperator:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        reason = self._reason(request, candidate.site)
        return None if reason is None else Status(reason, unresolvable=True)

    @staticmethod
    def _reason(request: VMRequest, site: Site) -> str | None:
        geo = request.geo_location
        if geo is not None:
            for name in GEO_FIELDS:
                wanted, actual = getattr(geo, name), getattr(site, name)
                if wanted and not _same(wanted, actual):
                    return REASON_LOCATION.format(site=site.id, field=name, actual=actual or '""', wanted=wanted)
        wanted = request.operator
        if wanted and not (_same(wanted, site.operator.id) or _same(wanted, site.operator.name)):
            return REASON_OPERATOR.format(site=site.id, actual=_operator(site.operator), wanted=wanted)
        return None

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> list[str]:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail
        it; the reason of a place or an operator is formatted once."""
        geo = request.geo_location
        fields = [(name, wanted, wanted.casefold()) for name in GEO_FIELDS
                  if geo is not None and (wanted := getattr(geo, name))]
        parts: dict[tuple[str, object], tuple[str, str] | None] = {}
        sites = snapshot.table.sites
        found = []
        for position in positions.tolist():
            site = sites[position]
            for name, wanted, folded in fields:
                actual = getattr(site, name)
                if actual.casefold() != folded:
                    key: tuple[str, object] = (name, actual)
                    if key not in parts:
                        parts[key] = reason_parts(REASON_LOCATION, field=name, actual=actual or '""', wanted=wanted)
                    break
            else:  # the place is right: the operator is not
                key = ("operator", (site.operator.id, site.operator.name))
                if key not in parts:
                    parts[key] = reason_parts(REASON_OPERATOR, actual=_operator(site.operator), wanted=request.operator)
            shared = parts[key]
            found.append(shared[0] + site.id + shared[1] if shared else self._reason(request, site))  # type: ignore[operator]
        return found

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
