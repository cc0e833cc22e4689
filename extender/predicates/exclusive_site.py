"""ExclusiveSite: a site whose attribute `exclusive_domains` lists domains (comma separated) takes only
requests whose `domain_id` is one of them; other sites take every request.

A request without a `domain_id` belongs to no domain, so an exclusive site refuses it. The
attribute is the inventory's: failures are unresolvable.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from extender.domain.model import Site, VMRequest
from extender.engine.framework import Candidate, Snapshot, Status, no_args

NAME = "ExclusiveSite"
ATTRIBUTE = "exclusive_domains"
REASON_NO_DOMAIN = "ExclusiveSite: site {site} is exclusive to domains {domains}, the request names no domain_id"
REASON_OTHER_DOMAIN = "ExclusiveSite: site {site} is exclusive to domains {domains}, not to domain {domain}"


def exclusive_domains(attributes: Mapping[str, str]) -> frozenset[str]:
    """The domains of the site's `exclusive_domains` attribute; empty when the site is not exclusive."""
    return _parse(attributes.get(ATTRIBUTE, ""))


@lru_cache(maxsize=1024)
def _parse(value: str) -> frozenset[str]:
    return frozenset(d.strip() for d in value.split(",") if d.strip())


class ExclusiveSite:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        reason = _reason(request, candidate.site)
        return None if reason is None else Status(reason, unresolvable=True)

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> list[str]:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail it."""
        sites = snapshot.table.sites
        return [_reason(request, sites[position]) for position in positions.tolist()]  # type: ignore[misc]

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): those whose exclusive domains, if any, hold the request's."""
        column = snapshot.table.attributes.get(ATTRIBUTE)
        if column is None:
            return None
        refused = [value for value in column.values
                   if (domains := _parse(value)) and request.domain_id not in domains]
        return ~column.isin(refused) if refused else None


def _reason(request: VMRequest, site: Site) -> str | None:
    """Why the site refuses the request (None: it takes it)."""
    domains = exclusive_domains(site.attributes)
    if not domains or request.domain_id in domains:
        return None
    listed = ", ".join(sorted(domains))
    if not request.domain_id:
        return REASON_NO_DOMAIN.format(site=site.id, domains=listed)
    return REASON_OTHER_DOMAIN.format(site=site.id, domains=listed, domain=request.domain_id)


def new(args: Mapping[str, Any]) -> ExclusiveSite:
    no_args(NAME, args)
    return ExclusiveSite()
