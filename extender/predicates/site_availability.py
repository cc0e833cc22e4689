"""SiteAvailability: the site is known, not Offline/Sellout, and the one asked for by `site_id`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.domain.model import VMRequest
from extender.engine.framework import Fail, no_args
from extender.engine.places import Places

NAME = "SiteAvailability"
REASON_NOT_REQUESTED = "SiteAvailability: the request asks for site {wanted}, this is site {site}"
REASON_UNAVAILABLE = "SiteAvailability: site {site} is {status}"


class SiteAvailability:
    name = NAME

    def check(self, request: VMRequest, at: Places) -> tuple[Fail, ...]:
        wanted = request.site_id
        return (
            Fail(~at.site_id.isin([wanted]) if wanted else False, REASON_NOT_REQUESTED, fields={"wanted": wanted}),
            Fail(~at.available, REASON_UNAVAILABLE, by=at.status, fields=lambda status: {"status": status}),
        )


def new(args: Mapping[str, Any]) -> SiteAvailability:
    no_args(NAME, args)
    return SiteAvailability()
