"""Spread the replicas of an allocation over sites. Pure: a function of (policy, snapshot, request).

One replica is one copy of the resource group: `count` VMs of each resource, all at one site. For
every site of the inventory the allocator asks the engine what a pod's VM request would get there:
`decide.check` (the policy's predicates) says whether a VM of each resource can go, the scores are
the engine's (`score_breakdown`, `normalize`, `combine`, as /prioritize gives them), and the number
of replicas a site can hold is found by placing hypothetical replicas and asking the predicates
again: n replicas fit when, with all of them placed but one VM of resource k, that VM still passes
(for every k). Stock, EIPs, volume pools and max counts all come in through the predicates, so the
allocator knows no plugin by name.

Strategies (`location_strategy`): `centralize` fills the best-scored sites in order, each up to what
it can hold; `discrete` (also when none is given, as the original) spreads the replicas in proportion
to what each site can hold (largest remainder; at least one each; never above what it holds); with
fewer replicas than sites, the best scored ones get one each. `region_strategy: alone` first keeps only
the sites of one region, as the original chose it: among the regions that can hold every replica, the
one that holds the most (equals: the region of the best-scored site); then applies the location
strategy there.
All or nothing: when the replicas cannot all be placed the answer is a `Refusal` with each site's
reason. Each resource gets one flavor per site: the first of its list with stock for one replica.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from extender.allocation.request import AllocationRequest, Resource
from extender.config.policy import Policy
from extender.domain.model import CENTRALIZE, Flavor, NodeRef, Placement, Site, VMRequest, node_ref
from extender.engine import decide
from extender.engine.snapshot import Candidate, Snapshot

REASON_NO_FLAVOR = "none of {flavors} has {count} left at {site} (one replica)"
REASON_CAPACITY = "holds {held} replica(s) of {vms} VM(s) each; one more fails: {reason}"
REASON_SHARED = "holds {held} of the {wanted} replica(s) its share needs once the other sites' share is placed: {reason}"
REASON_OTHER_REGION = "region {region} is not the one chosen ({chosen}) by region_strategy alone"
MESSAGE_NO_SITE = "no site can take a replica of {group}"
MESSAGE_SHORT = "{replicas} replica(s) of {group} asked, the sites can hold {held}"
MESSAGE_NO_REGION = "region_strategy alone: no single region can hold all {replicas} replica(s) of {group} ({held})"
MESSAGE_SHARED = "the replicas of {group} do not fit together: pools shared between sites run out"


@dataclass(frozen=True, slots=True)
class SiteOption:
    """A site that can take at least one replica: its score, how many it holds, the flavor per resource."""

    site: Site
    score: int
    capacity: int
    """Replicas it can hold (counted up to the limit asked for)."""
    flavors: tuple[Flavor, ...]
    """The flavor each resource gets at this site (same order as the request's resources)."""
    limit_reason: str = ""
    """Why it cannot hold one more replica (empty when the count stopped at the limit)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Where the replicas go: (site, replicas) in the order they were filled."""

    shares: tuple[tuple[SiteOption, int], ...]

    @property
    def replicas(self) -> int:
        return sum(count for _, count in self.shares)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why nothing was allocated: a summary and each site's reason."""

    message: str
    reasons: Mapping[str, str] = field(default_factory=dict)


def _node(site: Site) -> NodeRef:
    return node_ref(site.id, None)


def _vms(request: AllocationRequest, site: Site, flavors: Sequence[Flavor], replicas: range, prefix: str,
         group: str) -> list[Placement]:
    """The placements of `replicas` (indices) at `site`, one per VM."""
    out = []
    for g in replicas:
        for k, (resource, flavor) in enumerate(zip(request.resources, flavors)):
            for i in range(resource.count):
                out.append(Placement(
                    key=f"{prefix}/{g}/{k}/{i}", site_id=site.id, flavor_id=flavor.id, vcpus=flavor.vcpus,
                    ram=flavor.ram, need_eip=resource.need_eip, storage=resource.storage, group=group,
                    labels=request.labels,
                ))
    return out


def placements(plan: Plan, request: AllocationRequest, allocation_id: str, group: str = "") -> list[Placement]:
    """Every VM of the plan as a `Placement` keyed `<allocation id>/<replica>/<resource>/<vm>`."""
    out: list[Placement] = []
    start = 0
    for option, count in plan.shares:
        out += _vms(request, option.site, option.flavors, range(start, start + count), allocation_id, group)
        start += count
    return out


class _Sizer:
    """Counts the replicas a site holds by asking the predicates about hypothetical placements."""

    def __init__(self, policy: Policy, snapshot: Snapshot, request: AllocationRequest, group: str) -> None:
        self.policy = policy
        self.snapshot = snapshot
        self.request = request
        self.group = group
        self.base: dict[str, list[Placement]] = {}
        """Placements of the snapshot by region: a site's predicates look at its own region only
        (site stock, the region's EIP pools, the zone's volume pools)."""
        sites = snapshot.inventory.sites
        for usage in snapshot.by_site.values():
            for p in usage.placements:
                site = sites.get(p.site_id)
                self.base.setdefault(site.region if site else "", []).append(p)

    def vm_request(self, resource: Resource, flavor: Flavor | None = None) -> VMRequest:
        req = self.request.vm_request(resource, self.group)
        return replace(req, flavors=(flavor.id,)) if flavor else req

    def check_one(self, site: Site) -> str | None:
        """None when one VM of every resource can go to `site`, else why not."""
        for resource in self.request.resources:
            status = decide.check(self.policy, self.snapshot, self.vm_request(resource), _node(site))
            if status is not None:
                return self._prefixed(resource, status.reason)
        return None

    def _prefixed(self, resource: Resource, reason: str) -> str:
        return f"{resource.name}: {reason}" if len(self.request.resources) > 1 else reason

    def flavors(self, site: Site) -> tuple[Flavor, ...] | str:
        """Per resource, the first of its flavors offered in the site's region with stock for one
        replica (`count` VMs); the site's replicas of that resource all get it."""
        chosen = []
        for resource in self.request.resources:
            for flavor_id in resource.flavors:
                flavor = self.snapshot.inventory.flavor(site.region, flavor_id)
                if (flavor is not None and flavor.sold_in(site.az)
                        and self.snapshot.flavor_stock(site, flavor).left >= resource.count):
                    chosen.append(flavor)
                    break
            else:
                return self._prefixed(resource, REASON_NO_FLAVOR.format(
                    flavors=", ".join(resource.flavors), count=resource.count, site=site.id))
        return tuple(chosen)

    def fits(self, site: Site, flavors: Sequence[Flavor], n: int, extra: Sequence[Placement]) -> str | None:
        """None when `n` replicas fit at `site` on top of the snapshot and `extra`, else why not."""
        if n <= 0:
            return None
        mine = _vms(self.request, site, flavors, range(n), "~probe", self.group)
        base = self.base.get(site.region, [])
        offset = 0
        asked: set[tuple[object, ...]] = set()
        for resource, flavor in zip(self.request.resources, flavors):
            # Leave out the last VM of this resource of the last replica, then ask whether it fits.
            last = (n - 1) * self.request.vms_per_replica + offset + resource.count - 1
            offset += resource.count
            kind = (flavor.id, resource.need_eip, tuple(sorted(resource.storage.items())))
            if kind in asked:  # a VM just like one already asked about: same answer
                continue
            asked.add(kind)
            hypothetical = [*base, *extra, *mine[:last], *mine[last + 1:]]
            snapshot = Snapshot.build(self.snapshot.inventory, hypothetical, previous=self.snapshot)
            status = decide.check(self.policy, snapshot, self.vm_request(resource, flavor), _node(site))
            if status is not None:
                return self._prefixed(resource, status.reason)
        return None

    def capacity(self, site: Site, flavors: Sequence[Flavor], limit: int | None,
                 extra: Sequence[Placement] = ()) -> tuple[int, str]:
        """(replicas `site` holds, up to `limit`; why one more does not fit, "" if stopped at the limit)."""
        needs: dict[str, int] = {}
        for resource, flavor in zip(self.request.resources, flavors):
            needs[flavor.id] = needs.get(flavor.id, 0) + resource.count
        by_id = {f.id: f for f in flavors}
        upper = min(self.snapshot.flavor_stock(site, by_id[fid]).left // count for fid, count in needs.items())
        if limit is not None:
            upper = min(upper, limit)
        if upper > 0 and self.fits(site, flavors, upper, extra) is None:
            if limit is not None and upper == limit:
                return upper, ""
            reason = self.fits(site, flavors, upper + 1, extra) or ""
            return upper, reason
        lo, hi = 0, upper  # fits(lo) holds; fits(hi) does not (or hi == 0)
        if hi == 0:
            return 0, self.fits(site, flavors, 1, extra) or ""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.fits(site, flavors, mid, extra) is None:
                lo = mid
            else:
                hi = mid
        return lo, self.fits(site, flavors, lo + 1, extra) or ""


def _scores(sizer: _Sizer, sites: Sequence[Site]) -> dict[str, int]:
    """Each site's score: per resource the engine's normalized, weighted 0..10 over these sites; summed."""
    totals = {site.id: 0 for site in sites}
    snapshot = sizer.snapshot
    for resource in sizer.request.resources:
        request = sizer.vm_request(resource)
        candidates = [Candidate(node=_node(s), site=s, usage=snapshot.usage(s.id)) for s in sites]
        breakdowns = decide.normalize([decide.score_breakdown(sizer.policy, snapshot, request, c) for c in candidates])
        for site, breakdown in zip(sites, breakdowns):
            totals[site.id] += decide.combine(sizer.policy, breakdown)
    return totals


def evaluate(policy: Policy, snapshot: Snapshot, request: AllocationRequest, group: str = "",
             limit: int | None = None) -> tuple[list[SiteOption], dict[str, str]]:
    """The sites that can take a replica, best-scored first (ties: inventory order), and why each
    other site cannot. Capacities are counted up to `limit` (None: all of it)."""
    sizer = _Sizer(policy, snapshot, request, group)
    reasons: dict[str, str] = {}
    usable: list[tuple[Site, tuple[Flavor, ...]]] = []
    for site in snapshot.inventory.sites.values():
        why = sizer.check_one(site)
        flavors = sizer.flavors(site) if why is None else why
        if isinstance(flavors, str):
            reasons[site.id] = flavors
            continue
        usable.append((site, flavors))
    scores = _scores(sizer, [site for site, _ in usable])
    options = []
    for site, flavors in usable:
        held, why = sizer.capacity(site, flavors, limit)
        if held == 0:
            reasons[site.id] = why
            continue
        options.append(SiteOption(site, scores[site.id], held, flavors, why))
    order = {site_id: i for i, site_id in enumerate(snapshot.inventory.sites)}
    options.sort(key=lambda o: (-o.score, order[o.site.id]))
    return options, reasons


def _capacity_reasons(options: Sequence[SiteOption], request: AllocationRequest) -> dict[str, str]:
    return {
        o.site.id: REASON_CAPACITY.format(held=o.capacity, vms=request.vms_per_replica, reason=o.limit_reason)
        if o.limit_reason else f"holds at least {o.capacity} replica(s)"
        for o in options
    }


def discrete_shares(capacities: Sequence[int], replicas: int) -> list[int]:
    """Replicas per site in proportion to `capacities` (given best-scored first): largest remainder,
    at least one each, never above a capacity. Needs len(capacities) <= replicas <= sum(capacities)."""
    total = sum(capacities)
    quotas = [replicas * c / total for c in capacities]
    shares = [math.floor(q) for q in quotas]
    # Hand the rest out by largest remainder (earlier, better-scored sites win ties).
    for i in sorted(range(len(shares)), key=lambda i: -(quotas[i] - shares[i]))[: replicas - sum(shares)]:
        shares[i] += 1
    # At least one each: take from the site most above its quota (with more than one).
    for i, share in enumerate(shares):
        if share == 0:
            donor = max((j for j in range(len(shares)) if shares[j] > 1), key=lambda j: shares[j] - quotas[j])
            shares[donor] -= 1
            shares[i] = 1
    return shares


def plan(policy: Policy, snapshot: Snapshot, request: AllocationRequest, group: str = "") -> Plan | Refusal:
    """Where every replica of `request` goes, or why they cannot all be placed (nothing then is)."""
    replicas = request.replicas
    name = request.group_name
    centralize = request.location_strategy == CENTRALIZE
    # Centralize needs to know only whether a site holds what is left; region_strategy alone compares
    # what whole regions hold, so it counts everything.
    limit = replicas if centralize and not request.region_alone else None
    options, reasons = evaluate(policy, snapshot, request, group, limit=limit)
    if not options:
        return Refusal(MESSAGE_NO_SITE.format(group=name), reasons)

    if request.region_alone:
        held: dict[str, int] = {}
        for o in options:
            held[o.site.region] = held.get(o.site.region, 0) + o.capacity
        regions = [r for r in dict.fromkeys(o.site.region for o in options) if held[r] >= replicas]
        if not regions:
            summary = ", ".join(f"{r} holds {n}" for r, n in held.items())
            return Refusal(MESSAGE_NO_REGION.format(replicas=replicas, group=name, held=summary),
                           {**reasons, **_capacity_reasons(options, request)})
        # The original (RegionAndAz.Strategy) takes the region whose sites hold the most replicas; max()
        # keeps the first of equals, and `regions` is in the order of their best-scored sites.
        chosen = max(regions, key=lambda r: held[r])
        for o in options:
            if o.site.region != chosen:
                reasons[o.site.id] = REASON_OTHER_REGION.format(region=o.site.region, chosen=chosen)
        options = [o for o in options if o.site.region == chosen]

    held_total = sum(o.capacity for o in options)
    if held_total < replicas:
        return Refusal(MESSAGE_SHORT.format(replicas=replicas, group=name, held=held_total),
                       {**reasons, **_capacity_reasons(options, request)})

    sizer = _Sizer(policy, snapshot, request, group)
    if centralize:
        return _fill(sizer, options, reasons)
    if replicas <= len(options):
        wanted = [(o, 1) for o in options[:replicas]]
    else:
        wanted = list(zip(options, discrete_shares([o.capacity for o in options], replicas)))
    return _verify(sizer, wanted, reasons)


def _fill(sizer: _Sizer, options: Sequence[SiteOption], reasons: dict[str, str]) -> Plan | Refusal:
    """Centralize: each site in order takes what it holds with the earlier sites' replicas placed
    (EIP and volume pools are shared by the sites of a region or zone)."""
    request = sizer.request
    left = request.replicas
    extra: list[Placement] = []
    shares: list[tuple[SiteOption, int]] = []
    for option in options:
        if left == 0:
            break
        held, why = sizer.capacity(option.site, option.flavors, left, extra)
        if held:
            start = request.replicas - left
            extra += _vms(request, option.site, option.flavors, range(start, start + held), "~plan", sizer.group)
            shares.append((option, held))
            left -= held
        if why:
            reasons[option.site.id] = REASON_CAPACITY.format(held=held, vms=request.vms_per_replica, reason=why)
    if left:
        return Refusal(MESSAGE_SHARED.format(group=request.group_name), reasons)
    return Plan(tuple(shares))


def _verify(sizer: _Sizer, wanted: list[tuple[SiteOption, int]], reasons: dict[str, str]) -> Plan | Refusal:
    """Discrete: each site's share must fit with the earlier shares placed (shared pools)."""
    request = sizer.request
    extra: list[Placement] = []
    start = 0
    for option, count in wanted:
        held, why = sizer.capacity(option.site, option.flavors, count, extra)
        if held < count:
            reasons[option.site.id] = REASON_SHARED.format(held=held, wanted=count, reason=why)
            return Refusal(MESSAGE_SHARED.format(group=request.group_name), reasons)
        extra += _vms(request, option.site, option.flavors, range(start, start + count), "~plan", sizer.group)
        start += count
    return Plan(tuple(wanted))


__all__ = ["Plan", "Refusal", "SiteOption", "discrete_shares", "evaluate", "placements", "plan"]
