"""LocationAndOperator: the site's country, area, province and city, and its operator, match the
request's `geo_location` and `operator` where the request names them.

Names compare case-insensitively (`Shenzhen` is `shenzhen`); the operator matches the site operator's
id or name. A site in the wrong place never becomes the right one: failures are unresolvable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.domain.model import Operator, VMRequest
from extender.engine.framework import Fail, no_args
from extender.engine.places import Places
from extender.engine.sitetable import GEO_FIELDS

NAME = "LocationAndOperator"
REASON_LOCATION = "LocationAndOperator: site {site} is in {field} {actual}, the request wants {wanted}"
REASON_OPERATOR = "LocationAndOperator: site {site} is run by operator {actual}, the request wants {wanted}"


def shown(operator: Operator) -> str:
    """An operator as a reason names it: `name (id)`, or whichever it has."""
    if operator.name and operator.id:
        return f"{operator.name} ({operator.id})"
    return operator.name or operator.id or '""'


class LocationAndOperator:
    name = NAME

    def check(self, request: VMRequest, at: Places) -> list[Fail]:
        fails = []
        geo = request.geo_location
        for field in GEO_FIELDS if geo is not None else ():
            if wanted := getattr(geo, field):
                fails.append(Fail(~at.geo[field].isin([wanted.casefold()]), REASON_LOCATION, by=at.place[field],
                                  fields=lambda actual, field=field, wanted=wanted:
                                  {"field": field, "actual": actual or '""', "wanted": wanted}))
        if wanted := request.operator:
            folded = wanted.casefold()
            fails.append(Fail(~(at.operator_id.isin([folded]) | at.operator_name.isin([folded])), REASON_OPERATOR,
                              by=at.operator, fields=lambda operator: {"actual": shown(operator), "wanted": wanted}))
        return fails


def new(args: Mapping[str, Any]) -> LocationAndOperator:
    no_args(NAME, args)
    return LocationAndOperator()
