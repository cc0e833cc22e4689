"""SiteAvailability: the site is known, not Offline/Sellout, and the one asked for by `site_id`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import Site, VMRequest
from extender.engine.framework import Candidate, Snapshot, Status, no_args, reason_parts
from extender.engine.sitetable import object_array

NAME = "SiteAvailability"
REASON_UNAVAILABLE = "SiteAvailability: site {site} is {status}"
REASON_NOT_REQUESTED = "SiteAvailability: the request asks for site {wanted}, this is site {site}"


class SiteAvailability:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        reason = _reason(request, candidate.site)
        return None if reason is None else Status(reason, unresolvable=True)

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> np.ndarray:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail
        it: another site than the one asked for (formatted once, joined to the site ids a column at
        a time), else an unavailable one (its reason kept per inventory)."""
        table = snapshot.table
        ids = table.id_objects[positions]
        found = np.empty(len(positions), dtype=object)
        other = np.zeros(len(positions), dtype=bool)
        wanted = request.site_id
        if wanted and (parts := reason_parts(REASON_NOT_REQUESTED, wanted=wanted)) is not None:
            other = ids != wanted
            found[other] = parts[0] + ids[other] + parts[1]
        unavailable = snapshot.inventory_derived((NAME, "reasons"), lambda: object_array(
            [None if site.available else _unavailable(site) for site in table.sites]))
        found[~other] = unavailable[positions[~other]]
        for k in np.flatnonzero(np.equal(found, None)).tolist():  # a site id holds the marker
            found[k] = _reason(request, table.sites[positions[k]])
        return found

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


def _reason(request: VMRequest, site: Site) -> str | None:
    """Why the site fails the request (None: it passes)."""
    if request.site_id and request.site_id != site.id:
        return REASON_NOT_REQUESTED.format(wanted=request.site_id, site=site.id)
    if not site.available:
        return _unavailable(site)
    return None


def _unavailable(site: Site) -> str:
    return REASON_UNAVAILABLE.format(site=site.id, status=site.status)


def new(args: Mapping[str, Any]) -> SiteAvailability:
    no_args(NAME, args)
    return SiteAvailability()
