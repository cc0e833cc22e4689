"""ExclusiveSite: a site whose attribute `exclusive_domains` lists domains (comma separated) takes only
requests whose `domain_id` is one of them; other sites take every request.

A request without a `domain_id` belongs to no domain, so an exclusive site refuses it. The
attribute is the inventory's: failures are unresolvable.

`args: {domains: deny}` reads the attribute as the original global scheduler's ExclusiveNode did: the
listed domains are the ones refused there, every other request (and one without a domain) passes.
The default, `allow`, is this service's: a site exclusive to some domains takes nobody else's VMs.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from extender.domain.model import VMRequest
from extender.engine.framework import Fail, choice_arg
from extender.engine.places import Places

NAME = "ExclusiveSite"
ATTRIBUTE = "exclusive_domains"
REASON_NO_DOMAIN = "ExclusiveSite: site {site} is exclusive to domains {domains}, the request names no domain_id"
REASON_OTHER_DOMAIN = "ExclusiveSite: site {site} is exclusive to domains {domains}, not to domain {domain}"
REASON_DENIED = "ExclusiveSite: site {site} refuses domains {domains}, the request's domain {domain} among them"
MODES = ("allow", "deny")


@lru_cache(maxsize=1024)
def exclusive_domains(value: str) -> frozenset[str]:
    """The domains an `exclusive_domains` value lists; empty when the site is not exclusive."""
    return frozenset(d.strip() for d in value.split(",") if d.strip())


class ExclusiveSite:
    name = NAME

    def __init__(self, mode: str = "allow") -> None:
        self.deny = mode == "deny"

    def check(self, request: VMRequest, at: Places) -> tuple[Fail, ...]:
        domain = request.domain_id
        exclusive = at.attribute(ATTRIBUTE)
        if self.deny:
            refused = exclusive.where(lambda value: domain in exclusive_domains(value))
            return (Fail(refused, REASON_DENIED, by=exclusive,
                         fields=lambda value: {"domains": ", ".join(sorted(exclusive_domains(value))), "domain": domain}),)
        refused = exclusive.where(lambda value: bool(exclusive_domains(value)) and domain not in exclusive_domains(value))
        return (Fail(refused, REASON_OTHER_DOMAIN if domain else REASON_NO_DOMAIN, by=exclusive,
                     fields=lambda value: {"domains": ", ".join(sorted(exclusive_domains(value))), "domain": domain}),)


def new(args: Mapping[str, Any]) -> ExclusiveSite:
    """args: `domains: allow` (default: the listed domains only) or `deny` (the original's: all but those)."""
    return ExclusiveSite(choice_arg(args, "domains", MODES))
