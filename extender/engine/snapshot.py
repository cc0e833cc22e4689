"""The snapshot: the inventory plus everything placed, aggregated the ways plugins read it, and the
memo of the facts plugins declare (`framework.per_site`, `per_zone`, `per_pool`), one column per fact
and arguments, worked out once per snapshot and carried over to the next one but where placements
changed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from extender.domain.capacity import (
    ANY_TYPE,
    NO_HOSTS,
    NOTHING_PLACED,
    FlavorStock,
    Placed,
    flavor_stock,
    free_share,
)
from extender.domain.model import (
    EMPTY_USAGE,
    Flavor,
    Inventory,
    NodeRef,
    Placement,
    Site,
    SiteUsage,
    summarize,
)
from extender.engine.framework import SITE, ZONE, Fact
from extender.engine.index import InventoryIndex, SiteIndex, index_inventory
from extender.engine.sitetable import SiteTable

_NO_SITES = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64))

MAX_MEMO_CANDIDATES = 100_000
"""Bound of `Snapshot.candidate`'s memo: node names come from requests, the memo must not grow with them
(past it, the memo starts over)."""
MAX_FACTS = 256
"""Bound of the fact columns kept per snapshot: their arguments come from requests (flavor ids and volume
types the inventory knows, label selectors anyone may write). Past it, the oldest column is dropped."""


GROUPS = "groups"


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
    """What the inventory alone decides (see `index.index_inventory`)."""
    placed: Mapping[tuple[str, str], Placed] = field(default_factory=dict)
    """What the placements take per (site id, resource type)."""
    fullness: Mapping[str, float] = field(default_factory=dict)
    """Per site, 0..1: mean used share of vCPU and RAM over all its hosts, placements included."""
    _stocks: dict[str, dict[tuple[str, str], FlavorStock]] = field(default_factory=dict, repr=False, compare=False)
    """Memo of `flavor_stock` (it does not depend on the pod), by site id, then (region, flavor id)."""
    _by_id: Mapping[int, Placement] | None = field(default=None, repr=False, compare=False)
    """The placements by object identity (None when one comes twice: the next snapshot then sums from
    scratch). The next snapshot's placements that are not among them, and these that are not among
    the next one's, are what changed: a source hands the same objects while nothing changes."""
    _facts: dict[tuple[Fact, tuple], FactColumns] = field(default_factory=dict, repr=False, compare=False)
    """Memo of `fact`, by fact and arguments (the next snapshot copies each and works it out again
    only for the sites, zones and pools whose placements changed)."""
    _groups: dict[str, dict[str, dict[int, int]]] = field(default_factory=dict, repr=False, compare=False)
    """`group_members`' sites per group, under GROUPS once built (carried over to the next snapshot)."""
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
        """Keep the memos of `previous` (same inventory) for every site not in `changed`: the flavor
        stocks by a copy of their outer dict, the groups and the fact columns by a copy patched at the
        changed sites (and at their zones and pools). (Copied first: other threads may be filling them.)"""
        self._stocks.update(previous._stocks)
        for site_id in changed:
            self._stocks.pop(site_id, None)
        table = self.table
        position, where = table.position, []
        for site_id in changed:
            if site_id in position:
                where.append(position[site_id])
        groups = previous._groups.get(GROUPS)
        if groups is not None:
            groups = dict(groups)
            copied: set[str] = set()
            for site_id in changed:
                at = position.get(site_id)
                for usage, sign in ((previous.by_site.get(site_id), -1), (self.by_site.get(site_id), 1)):
                    for name in (usage.groups if usage is not None and at is not None else ()):
                        if name not in copied:
                            groups[name] = dict(groups.get(name, {}))
                            copied.add(name)
                    _count_groups(groups, at, usage, sign)
            self._groups[GROUPS] = groups
        positions = np.array(where, dtype=np.intp)
        for (fact, args), found in dict(previous._facts).items():
            codes, keys = _grain(table, fact)
            patched = positions if codes is None else np.unique(codes[positions])
            values = _values(self, fact, args, [keys[code] for code in patched.tolist()])
            columns = found.by_key if fact.names is None else tuple(found.by_key)
            columns = [column.copy() for column in (columns if isinstance(columns, tuple) else (columns,))]
            for code, value in zip(patched.tolist(), values):
                if fact.names is None:
                    columns[0][code] = value
                else:
                    for column, part in zip(columns, value):
                        column[code] = part
            by_key = _read_only(columns[0] if fact.names is None else fact.make(*columns))  # type: ignore[misc]
            self._facts[(fact, args)] = FactColumns(by_key, _read_only(_gather(fact, by_key, codes)))

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

    def fact(self, fact: Fact, args: tuple = ()) -> Any:
        """`fact` with `args` at every site, by site position: a NamedTuple of arrays, or an array.
        Worked out once per snapshot (per zone or pool for those grains); read-only."""
        key = (fact, args)
        found = self._facts.get(key)
        if found is None:
            codes, keys = _grain(self.table, fact)
            by_key = _read_only(fact.columns(_values(self, fact, args, keys)))
            found = FactColumns(by_key, _read_only(_gather(fact, by_key, codes)))
            memo = self._facts
            while len(memo) >= MAX_FACTS:
                try:
                    del memo[next(iter(memo))]
                except (KeyError, StopIteration, RuntimeError):  # another thread dropped it first
                    break
            found = memo.setdefault(key, found)
        return found.by_site

    def group_sites(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions, VM counts) of the sites that hold VMs of `group`."""
        members = self._by_group().get(group)
        if not members:
            return _NO_SITES
        return (np.fromiter(members.keys(), dtype=np.intp, count=len(members)),
                np.fromiter(members.values(), dtype=np.int64, count=len(members)))

    def group_members(self, group: str) -> np.ndarray:
        """Per site position: how many VMs of `group` the site holds."""
        members = np.zeros(len(self.table), dtype=np.int64)
        if group:
            where, counts = self.group_sites(group)
            members[where] = counts
        return members

    def _by_group(self) -> dict[str, dict[int, int]]:
        """By group: {site position: VMs of the group there}; built once, then carried over."""
        found = self._groups.get(GROUPS)
        if found is None:
            found = {}
            for site_id, usage in self.by_site.items():
                _count_groups(found, self.table.position.get(site_id), usage, 1)
            found = self._groups.setdefault(GROUPS, found)
        return found

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


@dataclass(frozen=True, slots=True, eq=False)
class FactColumns:
    """One fact's values by key (site position, zone code or pool code) and by site position."""

    by_key: Any
    """A NamedTuple of arrays, or one array, indexed by the grain's code."""
    by_site: Any
    """The same, gathered for every site position (the same object for a fact per site)."""


def _grain(table: SiteTable, fact: Fact) -> tuple[np.ndarray | None, Sequence[Any]]:
    """(site position → code, or None when the code is the position; the key of each code)."""
    if fact.grain == SITE:
        return None, table.sites
    column = table.zone if fact.grain == ZONE else table.eip_pool
    return column.codes, column.by_code


def _values(snapshot: Snapshot, fact: Fact, args: tuple, keys: Sequence[Any]) -> list[Any]:
    if fact.grain == SITE:
        return [fact.fn(snapshot, site, site.region, *args) for site in keys]
    return [fact.fn(snapshot, key, *args) for key in keys]


def _gather(fact: Fact, by_key: Any, codes: np.ndarray | None) -> Any:
    if codes is None:
        return by_key
    if fact.names is None:
        return by_key[codes]
    return type(by_key)(*(column[codes] for column in by_key))


def _read_only(columns: Any) -> Any:
    for column in (columns if isinstance(columns, tuple) else (columns,)):
        column.flags.writeable = False
    return columns
