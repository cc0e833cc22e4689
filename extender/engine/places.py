"""The places a plugin decides: every site of the inventory at once, or the place of one node.

Both answer the same attributes, one entry per place (`size` of them), so a plugin's check is one
set of numpy expressions for both. For every site the entries come from the `SiteTable` and the
snapshot's fact columns; for one node they are worked out from that node alone (length 1).

Where a node is: `region` and `zone` are what the node says (its topology labels, else its site's);
everything else is the site's as the inventory has it (its zone for volumes, its EIP pool, its facts).
For every site at once the two agree.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from extender.engine.framework import POOL, SITE, Fact
from extender.engine.sitetable import GEO_FIELDS, Column
from extender.engine.snapshot import Candidate, Snapshot

class Places:
    """What a check reads of the places it decides (attributes documented here, built by the subclasses)."""

    snapshot: Snapshot
    size: int
    """How many places."""
    site_ids: np.ndarray
    """Objects: the site id of each place (reasons are joined to them)."""
    site_id: Column
    region: Column
    """Where the node is: its region label, else its site's region."""
    zone: Column
    """(region, zone), where the node is."""
    site_zone: Column
    """(region, az) of the site in the inventory: what volume pools and placements are keyed by."""
    eip_pool: Column
    """(region, eip_type_name) of the site: the EIP pool it draws from."""
    available: np.ndarray
    """The site's status takes VMs."""
    status: Column
    geo: Mapping[str, Column]
    """By `GEO_FIELDS` name (country, area, province, city): the site's place, casefolded."""
    place: Mapping[str, Column]
    """The same as the inventory writes it."""
    operator: Column
    """The site's `Operator`."""
    operator_id: Column
    """Casefolded."""
    operator_name: Column
    """Casefolded."""

    def attribute(self, name: str) -> Column:
        """The site attribute `name` ("" where the site has none)."""
        raise NotImplementedError

    def fact(self, fact: Fact, *args: Hashable) -> Any:
        """`fact(..., *args)` at each place: a NamedTuple of arrays, or one array."""
        raise NotImplementedError

    def members(self, group: str) -> np.ndarray:
        """How many VMs of `group` each place's site holds (0 without a group)."""
        raise NotImplementedError


class EverySite(Places):
    """Every site of the snapshot's inventory, in `SiteTable` order."""

    def __init__(self, snapshot: Snapshot) -> None:
        table = snapshot.table
        self.snapshot = snapshot
        self.size = len(table)
        self.site_ids = table.id_objects
        self.site_id = table.site_id
        self.region = table.region
        self.zone = self.site_zone = table.zone
        self.eip_pool = table.eip_pool
        self.available = table.available
        self.status = table.status
        self.geo = table.geo
        self.place = table.place
        self.operator = table.operator
        self.operator_id = table.operator_id
        self.operator_name = table.operator_name

    def attribute(self, name: str) -> Column:
        found = self.snapshot.table.attributes.get(name)
        if found is None:  # no site has it
            return Column(np.zeros(self.size, dtype=np.int32), MappingProxyType({"": 0}), ("",))
        return found

    def fact(self, fact: Fact, *args: Hashable) -> Any:
        return self.snapshot.fact(fact, args)

    def members(self, group: str) -> np.ndarray:
        return self.snapshot.group_members(group)


def every_site(snapshot: Snapshot) -> EverySite:
    """Every site of the snapshot (a few references: made per request, so that the snapshot does not
    hold a cycle through it)."""
    return EverySite(snapshot)


def _one(value: Hashable) -> Column:
    return Column(np.zeros(1, dtype=np.int32), MappingProxyType({value: 0}), (value,))


class OnePlace(Places):
    """The place of one node (a `Candidate`): its site, where the node says it is. Attributes are
    made when read."""

    size = 1

    def __init__(self, candidate: Candidate, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.candidate = candidate
        self._site = candidate.site

    @cached_property
    def site_ids(self) -> np.ndarray:  # type: ignore[override]
        ids = np.empty(1, dtype=object)
        ids[0] = self._site.id
        return ids

    @cached_property
    def site_id(self) -> Column:  # type: ignore[override]
        return _one(self._site.id)

    @cached_property
    def region(self) -> Column:  # type: ignore[override]
        return _one(self.candidate.region)

    @cached_property
    def zone(self) -> Column:  # type: ignore[override]
        return _one((self.candidate.region, self.candidate.zone))

    @cached_property
    def site_zone(self) -> Column:  # type: ignore[override]
        return _one((self._site.region, self._site.az))

    @cached_property
    def eip_pool(self) -> Column:  # type: ignore[override]
        return _one((self._site.region, self._site.eip_type_name))

    @cached_property
    def available(self) -> np.ndarray:  # type: ignore[override]
        return np.array([self._site.available])

    @cached_property
    def status(self) -> Column:  # type: ignore[override]
        return _one(self._site.status)

    @cached_property
    def geo(self) -> Mapping[str, Column]:  # type: ignore[override]
        return {name: _one(getattr(self._site, name).casefold()) for name in GEO_FIELDS}

    @cached_property
    def place(self) -> Mapping[str, Column]:  # type: ignore[override]
        return {name: _one(getattr(self._site, name)) for name in GEO_FIELDS}

    @cached_property
    def operator(self) -> Column:  # type: ignore[override]
        return _one(self._site.operator)

    @cached_property
    def operator_id(self) -> Column:  # type: ignore[override]
        return _one(self._site.operator.id.casefold())

    @cached_property
    def operator_name(self) -> Column:  # type: ignore[override]
        return _one(self._site.operator.name.casefold())

    def attribute(self, name: str) -> Column:
        return _one(self._site.attributes.get(name, ""))

    def fact(self, fact: Fact, *args: Hashable) -> Any:
        site = self._site
        if fact.grain == SITE:
            value = fact.fn(self.snapshot, site, self.candidate.region, *args)
        elif fact.grain == POOL:
            value = fact.fn(self.snapshot, (site.region, site.eip_type_name), *args)
        else:
            value = fact.fn(self.snapshot, (site.region, site.az), *args)
        return fact.columns([value])

    def members(self, group: str) -> np.ndarray:
        return np.array([self.candidate.usage.groups.get(group, 0) if group else 0], dtype=np.int64)
