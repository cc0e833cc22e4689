"""SiteAvailability: the site is known, not Offline/Sellout, and the one asked for by `site_id`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.framework import Candidate, Snapshot, Status, no_args
from extender.model import VMRequest

NAME = "SiteAvailability"
REASON_UNAVAILABLE = "SiteAvailability: site {site} is {status}"
REASON_NOT_REQUESTED = "SiteAvailability: the request asks for site {wanted}, this is site {site}"


class SiteAvailability:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        site = candidate.site
        if request.site_id and request.site_id != site.id:
            return Status(REASON_NOT_REQUESTED.format(wanted=request.site_id, site=site.id), unresolvable=True)
        if not site.available:
            return Status(REASON_UNAVAILABLE.format(site=site.id, status=site.status), unresolvable=True)
        return None

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): the one asked for, if any, when it is available."""
        table = snapshot.table
        wanted = request.site_id
        if wanted:
            mask = np.zeros(len(table), dtype=bool)
            where = table.position.get(wanted)
            if where is not None:
                mask[where] = table.available[where]
            return mask
        return table.available if snapshot.index.unavailable else None


def new(args: Mapping[str, Any]) -> SiteAvailability:
    no_args(NAME, args)
    return SiteAvailability()
