"""What predicates and priorities are given and what they answer.

A predicate (filter plugin) looks at one candidate site and answers None (pass) or a `Status`
with a human reason and whether the failure is unresolvable (no preemption can help). A priority
(score plugin) gives one candidate a raw score in 0..100; the engine weighs and scales them.

That per-candidate answer is the definition (`engine.reference_*` use nothing else). A plugin may
also answer for every site of the inventory at once, as columns over `Snapshot.table` (the engine
then decides most nodes without a call per node; tests/engine/test_fastpath.py holds each plugin to it):
- predicate `site_mask(request, snapshot)`: the sites that pass (None: all);
  `site_resolvable(request, snapshot)`: of those that fail, the ones whose failure is resolvable
  (without it: none is); `explain_sites(request, positions, snapshot)`: the reasons of failing sites;
- priority `site_scores(request, snapshot)`: each site's score; `pre_score(request, snapshot)`: a
  score that is the same everywhere for this request (None: it is not).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

from extender.domain.capacity import (
    ANY_TYPE,
    NO_HOSTS,
    NOTHING_PLACED,
    FlavorStock,
    InventoryIndex,
    Placed,
    SiteIndex,
    flavor_stock,
    free_share,
    index_inventory,
)
from extender.domain.model import (
    EMPTY_USAGE,
    Flavor,
    Inventory,
    NodeRef,
    Placement,
    Site,
    SiteUsage,
    VMRequest,
    summarize,
)
from extender.engine.sitetable import SiteTable

T = TypeVar("T")
_MISSING = object()
_NO_SITES = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64))

MAX_PLUGIN_SCORE = 100
MAX_MEMO_CANDIDATES = 100_000
GROUPS = "groups"
"""`Snapshot.derived` key of the sites per group (carried over to the next snapshot)."""
MAX_DERIVED = 256
"""Bound of `Snapshot.derived`'s memo: some keys come from requests (a volume type, a selector)."""
"""Bound of `Snapshot.candidate`'s memo: node names come from requests, the memo must not grow with them."""


def no_args(name: str, args: Mapping[str, object]) -> None:
    """For the factory of a plugin without options: any arg is a mistake worth a message."""
    if args:
        raise ValueError(f"{name} takes no args, got {', '.join(sorted(args))}")


class Status(NamedTuple):
    """A failed predicate: why, and whether it can never pass for this request (no preemption).
    (A named tuple: the fast path makes one for each node that fails, thousands per request.)"""

    reason: str
    unresolvable: bool = False


MARK = "\x00"
"""Stands for the site id in `reason_parts`."""


def reason_parts(template: str, **fields: object) -> tuple[str, str] | None:
    """`template` formatted with every field but `site`, split where the site id goes: a reason that
    many sites share but for their id is formatted once, then each gets head + site id + tail. None
    when a field holds the marker itself (format for each site then)."""
    if any(MARK in str(value) for value in fields.values()):
        return None
    head, tail = template.format(site=MARK, **fields).split(MARK, 1)
    return head, tail


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The inventory plus everything placed, aggregated the ways the plugins look it up.

    Built once when the inventory or the placements change, never per request: whatever does not
    depend on the pod being scheduled is computed here, so a predicate call is a few look-ups and
    some arithmetic.
    """

    inventory: Inventory
    by_site: Mapping[str, SiteUsage] = field(default_factory=dict)
    eips_by_pool: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """EIPs placed per (region, pool name), all sites of the region together."""
    storage_by_zone: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """Volume GB placed per (region, availability zone, volume type), all sites of the zone together."""
    index: InventoryIndex = field(default_factory=InventoryIndex)
    """What the inventory alone decides (see `capacity.index_inventory`)."""
    placed: Mapping[tuple[str, str], Placed] = field(default_factory=dict)
    """What the placements take per (site id, resource type)."""
    fullness: Mapping[str, float] = field(default_factory=dict)
    """Per site, 0..1: mean used share of vCPU and RAM over all its hosts, placements included."""
    _stocks: dict[str, dict[tuple[str, str], FlavorStock]] = field(default_factory=dict, repr=False, compare=False)
    """Memo of `flavor_stock` (it does not depend on the pod), by site id, then (region, flavor id)."""
    _memos: dict[str, dict[str, dict]] = field(default_factory=dict, repr=False, compare=False)
    """Plugins' memos of what does not depend on the pod (`site_memo`), by name, then site id."""
    _by_id: Mapping[int, Placement] | None = field(default=None, repr=False, compare=False)
    """The placements by object identity (None when one comes twice: the next snapshot then sums from
    scratch). The next snapshot's placements that are not among them, and these that are not among
    the next one's, are what changed: a source hands the same objects while nothing changes."""
    _columns: dict[Hashable, tuple[Callable[[Snapshot, Site], object], np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False)
    """Memo of `site_column`: per-site numbers that do not depend on the pod, with how one is worked out
    (the next snapshot copies the column and works out again only the sites whose placements changed)."""
    _derived: dict[Hashable, object] = field(default_factory=dict, repr=False, compare=False)
    """Memo of `derived`: what does not depend on the pod nor belong to one site, once per snapshot."""
    _candidates: dict[str, Candidate] = field(default_factory=dict, repr=False, compare=False)
    """Memo of `candidate` by node name (it does not depend on the pod): valid while the node ref is the
    same object, which the node cache keeps until the node changes."""

    @classmethod
    def build(cls, inventory: Inventory, placements: Sequence[Placement] = (),
              previous: Snapshot | None = None) -> Snapshot:
        """Aggregate `placements` over `inventory`. `previous` (the last snapshot) lends its inventory
        index when the inventory is the same object, so a placement change does not re-index, and what
        it worked out for the sites whose placements did not change (fullness, stock, memos): a bind
        costs work for the site it changed, not for the whole inventory."""
        if previous is not None and previous.inventory is not inventory:
            previous = None
        index = previous.index if previous is not None else index_inventory(inventory)
        placements = tuple(placements)
        by_id: dict[int, Placement] | None = dict(zip(map(id, placements), placements))
        if len(by_id) != len(placements):  # type: ignore[arg-type]
            by_id = None
        changed = _changed_sites(previous, by_id) if previous is not None and by_id is not None else None
        if previous is not None and changed is not None:
            # Only the sites whose placements changed are summed again (in the order of `placements`).
            by_site = dict(previous.by_site)
            for site_id in changed:
                by_site.pop(site_id, None)
            by_site.update(summarize([p for p in placements if p.site_id in changed]))
            placed = dict(previous.placed)
            for site_id in changed:
                for rtype in index.sites[site_id].capacity if site_id in index.sites else ():
                    placed.pop((site_id, rtype), None)
            summed = [(site_id, by_site[site_id]) for site_id in changed if site_id in by_site]
            eips, storage = dict(previous.eips_by_pool), dict(previous.storage_by_zone)
            for site_id in changed:
                _shared_usage(eips, storage, inventory.sites.get(site_id), previous.by_site.get(site_id), -1)
                _shared_usage(eips, storage, inventory.sites.get(site_id), by_site.get(site_id), 1)
        else:
            previous = None
            by_site = summarize(placements)
            placed = {}
            summed = list(by_site.items())
            eips, storage = {}, {}
            for site_id, usage in by_site.items():
                _shared_usage(eips, storage, inventory.sites.get(site_id), usage, 1)
        for site_id, usage in summed:
            site = inventory.sites.get(site_id)
            if site is not None:
                _take(placed, site, index.sites[site_id], usage, inventory)
        if previous is not None and changed is not None:
            fullness = dict(previous.fullness)
            sites = [(site_id, index.sites[site_id]) for site_id in changed if site_id in index.sites]
        else:
            fullness, sites = {}, list(index.sites.items())
        for site_id, site_index in sites:
            pool = site_index.capacity.get(ANY_TYPE, NO_HOSTS)
            taken = placed.get((site_id, ANY_TYPE), NOTHING_PLACED)
            free = (free_share(pool.cpu_free - taken.vcpus, pool.cpu_total)
                    + free_share(pool.mem_free - taken.ram, pool.mem_total)) / 2
            fullness[site_id] = 1.0 - free if pool.hosts else 0.0
        snapshot = cls(inventory=inventory, by_site=by_site, eips_by_pool=eips, storage_by_zone=storage,
                       index=index, placed=placed, fullness=fullness, _by_id=by_id)
        if previous is not None and changed is not None:
            snapshot._carry_over(previous, changed)
        return snapshot

    def _carry_over(self, previous: Snapshot, changed: frozenset[str]) -> None:
        """Keep the memos of `previous` (same inventory) for every site not in `changed`: the per-site
        memos by a copy of their outer dict, the columns by a copy patched at the changed sites. (The
        dicts are copied first: other threads may be filling them.)"""
        self._stocks.update(previous._stocks)
        for site_id in changed:
            self._stocks.pop(site_id, None)
        for name, memo in dict(previous._memos).items():
            kept = self._memos[name] = dict(memo)
            for site_id in changed:
                kept.pop(site_id, None)
        position, sites = self.table.position, self.inventory.sites
        groups = previous._derived.get(GROUPS)
        if groups is not None:
            groups = dict(groups)  # type: ignore[call-overload]
            copied: set[str] = set()
            for site_id in changed:
                where = position.get(site_id)
                for usage, sign in ((previous.by_site.get(site_id), -1), (self.by_site.get(site_id), 1)):
                    for name in (usage.groups if usage is not None and where is not None else ()):
                        if name not in copied:
                            groups[name] = dict(groups.get(name, {}))
                            copied.add(name)
                    _count_groups(groups, where, usage, sign)
            self._derived[GROUPS] = groups
        patch = [(position[site_id], sites[site_id]) for site_id in changed if site_id in position]
        for key, (value_of, column) in dict(previous._columns).items():
            column = column.copy()
            for where, site in patch:
                column[where] = value_of(self, site)
            column.flags.writeable = False
            self._columns[key] = (value_of, column)

    def usage(self, site_id: str) -> SiteUsage:
        return self.by_site.get(site_id, EMPTY_USAGE)

    def flavor_stock(self, site: Site, flavor: Flavor) -> FlavorStock:
        """How many VMs of `flavor` the site can still take."""
        memo = self._stocks.get(site.id)
        if memo is None:
            memo = self._stocks.setdefault(site.id, {})
        key = (flavor.region, flavor.id)
        stock = memo.get(key)
        if stock is None:
            rtype = flavor.resource_type
            stock = memo[key] = flavor_stock(
                self.index.capacity(site.id, rtype),
                self.placed.get((site.id, rtype), NOTHING_PLACED),
                flavor,
                site.max_count,
                self.usage(site.id).vms,
            )
        return stock

    @property
    def table(self) -> SiteTable:
        return self.index.table

    def site_column(self, key: Hashable, value_of: Callable[[Snapshot, Site], object],
                    dtype: type = np.float64) -> np.ndarray:
        """`value_of(snapshot, site)` for every site of `table`, in position order: worked out once per
        snapshot, and by the next one only for the sites whose placements changed. So `value_of` must
        depend on the pod never, and on no placement at another site. Read-only."""
        found = self._columns.get(key)
        if found is None:
            sites = self.inventory.sites
            column = np.fromiter((value_of(self, sites[i]) for i in self.table.ids), dtype=dtype,
                                 count=len(self.table))
            column.flags.writeable = False
            found = self._columns.setdefault(key, (value_of, column))
        return found[1]

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """What `build` gives, once per snapshot (for what depends on the inventory and placements of
        several sites, e.g. a zone's volumes; never on the pod). Keys must come from a bounded set."""
        return _memoized(self._derived, key, build)

    def inventory_derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """What `build` gives, once per inventory (for what depends on the inventory alone: it outlives
        placement changes). Keys must come from a bounded set."""
        return _memoized(self.index.memo, key, build)

    def stock_mask(self, flavor_id: str) -> np.ndarray:
        """Per site: the flavor `flavor_id` of the site's own region has stock left there."""
        flavor_of = self.inventory.flavors.get

        def in_stock(snapshot: Snapshot, site: Site) -> bool:
            flavor = flavor_of((site.region, flavor_id))
            return flavor is not None and snapshot.flavor_stock(site, flavor).left >= 1

        return self.site_column(("stock", flavor_id), in_stock, dtype=bool)

    def fullness_column(self) -> np.ndarray:
        """Per site: `fullness`."""
        return self.site_column("fullness", lambda snapshot, site: snapshot.fullness.get(site.id, 0.0))

    def group_sites(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions, VM counts) of the sites that hold VMs of `group`."""
        members = self._groups().get(group)
        if not members:
            return _NO_SITES
        return (np.fromiter(members.keys(), dtype=np.intp, count=len(members)),
                np.fromiter(members.values(), dtype=np.int64, count=len(members)))

    def _groups(self) -> dict[str, dict[int, int]]:
        """By group: {site position: VMs of the group there}; built once, then carried over."""
        def build() -> dict[str, dict[int, int]]:
            found: dict[str, dict[int, int]] = {}
            for site_id, usage in self.by_site.items():
                _count_groups(found, self.table.position.get(site_id), usage, 1)
            return found
        return self.derived(GROUPS, build)

    def positions(self, nodes: Sequence[NodeRef]) -> np.ndarray:
        """`SiteTable.node_position` of each node: where the fast path looks its site up (-1: the
        node is decided on its own)."""
        position = self.table.node_position
        return np.fromiter(map(position, nodes), dtype=np.intp, count=len(nodes))

    def candidates(self, nodes: Sequence[NodeRef]) -> list[Candidate | None]:
        """`candidate` of each node, in order."""
        memo = self._candidates
        found: list[Candidate | None] = []
        append = found.append
        for node in nodes:
            candidate = memo.get(node.name)
            append(candidate if candidate is not None and candidate.node is node else self.candidate(node))
        return found

    def site_memo(self, name: str, site_id: str) -> dict:
        """A dict that lives as long as this snapshot, for a plugin to keep what it works out from one
        site's data alone (never anything that depends on the pod). The next snapshot keeps it for
        the sites whose placements did not change."""
        memos = self._memos.get(name)
        if memos is None:
            memos = self._memos.setdefault(name, {})
        found = memos.get(site_id)
        if found is None:
            found = memos.setdefault(site_id, {})
        return found

    def candidate(self, node: NodeRef) -> Candidate | None:
        """`node` resolved to its site and the site's usage; None when the site is not in the inventory."""
        memo = self._candidates
        found = memo.get(node.name)
        if found is not None and found.node is node:
            return found
        site = self.inventory.sites.get(node.site_id)
        if site is None:
            return None
        if len(memo) >= MAX_MEMO_CANDIDATES:
            memo.clear()
        found = memo[node.name] = Candidate(node=node, site=site, usage=self.usage(site.id),
                                            position=self.table.node_position(node))
        return found

    def first_in_stock(self, flavors: Sequence[str], site: Site, region: str) -> tuple[int, Flavor] | None:
        """(rank, flavor) of the most preferred of `flavors` offered in `region` with stock left."""
        for rank, flavor_id in enumerate(flavors):
            flavor = self.inventory.flavor(region, flavor_id)
            if flavor is not None and self.flavor_stock(site, flavor).left >= 1:
                return rank, flavor
        return None


def _count_groups(groups: dict[str, dict[int, int]], where: int | None, usage: SiteUsage | None, sign: int) -> None:
    """Add (sign 1) or take off (-1) a site's VMs per group; a count that reaches 0 is dropped."""
    if where is None or usage is None:
        return
    for name, count in usage.groups.items():
        _add(groups.setdefault(name, {}), where, sign * count)


def _shared_usage(eips: dict[tuple[str, str], int], storage: dict[tuple[str, str, str], int],
                  site: Site | None, usage: SiteUsage | None, sign: int) -> None:
    """Add (sign 1) or take off (-1) a site's usage of what its region's and zone's sites share: the
    EIP pool and the volume pools. A sum that reaches 0 is dropped (as if nothing were placed)."""
    if site is None or usage is None:
        return
    if usage.eips:
        _add(eips, (site.region, site.eip_type_name), sign * usage.eips)
    for volume_type, size in usage.storage.items():
        if size:
            _add(storage, (site.region, site.az, volume_type), sign * size)


def _memoized(memo: dict, key: Hashable, build: Callable[[], T]) -> T:
    """`memo[key]`, made by `build` when missing (kept while the memo has fewer than MAX_DERIVED)."""
    found = memo.get(key, _MISSING)
    if found is _MISSING:
        found = build()
        if len(memo) < MAX_DERIVED:
            found = memo.setdefault(key, found)
    return found  # type: ignore[return-value]


def _add(sums: dict, key: Hashable, amount: int) -> None:
    total = sums.get(key, 0) + amount
    if total:
        sums[key] = total
    else:
        sums.pop(key, None)


def _changed_sites(previous: Snapshot, by_id: Mapping[int, Placement]) -> frozenset[str] | None:
    """The sites of the placements added or removed since `previous` (a changed one is a new object:
    its old site and its new one); None: unknown. `previous` holds its placements, so the identity of
    one of them cannot pass to a new object meanwhile."""
    before = previous._by_id
    if before is None:
        return None
    return frozenset([(by_id.get(i) or before[i]).site_id for i in by_id.keys() ^ before.keys()])


def _take(placed: dict[tuple[str, str], Placed], site: Site, index: SiteIndex, usage: SiteUsage,
          inventory: Inventory) -> None:
    """Take each placement off every resource type that shares a host with its own (all types when
    its flavor is unknown in the region or no host of the site serves its type)."""
    by_flavor: dict[str, list[int]] = {}
    for placement in usage.placements:
        acc = by_flavor.get(placement.flavor_id)
        if acc is None:
            acc = by_flavor[placement.flavor_id] = [0, 0, 0]
        acc[0] += 1
        acc[1] += placement.vcpus
        acc[2] += placement.ram
    every = frozenset(index.capacity)
    sums: dict[str, list[int]] = {}
    for flavor_id, (count, vcpus, ram) in by_flavor.items():
        flavor = inventory.flavor(site.region, flavor_id)
        types = index.overlaps.get(flavor.resource_type) if flavor else None
        for rtype in types or every:
            acc = sums.get(rtype)
            if acc is None:
                acc = sums[rtype] = [0, 0, 0]
            acc[0] += count
            acc[1] += vcpus
            acc[2] += ram
    for rtype, (count, vcpus, ram) in sums.items():
        placed[(site.id, rtype)] = Placed(count, vcpus, ram)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node asked about, resolved to its site. Region and zone: node labels, else the inventory
    (worked out once here: predicates read them for every node of every request)."""

    node: NodeRef
    site: Site
    usage: SiteUsage
    position: int = -1
    """`SiteTable.node_position` of the node: where the site's columns decide for it, -1 when the
    node is decided on its own, plugin call by plugin call."""
    region: str = field(init=False)
    zone: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "region", self.node.region or self.site.region)
        object.__setattr__(self, "zone", self.node.zone or self.site.az)

    @property
    def name(self) -> str:
        return self.node.name


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float: ...
