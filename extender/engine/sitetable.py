"""The inventory's sites as columns: one numpy array per attribute, one entry per site.

The fast path decides for every site at once: a plugin's check runs once over these columns
(`places.EverySite`), and the engine gathers the answers for the nodes asked by each node's site
position. A request then costs a few vector operations per plugin instead of one Python call per
plugin and node. Built once per inventory, never per request.

Text attributes are stored as integer codes (`Column`): comparing a code array against the codes
of the requested values is what `np.isin` does in C, and a question about a value (`where`, `map`)
is asked once per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from extender.domain.model import Inventory, NodeRef, Site

GEO_FIELDS = ("country", "area", "province", "city")


@dataclass(frozen=True, slots=True, eq=False)
class Column:
    """One attribute of every site, as integer codes, and the code of each value."""

    codes: np.ndarray
    """int32, one per site position."""
    values: Mapping[Hashable, int]
    """Value → code."""
    by_code: tuple[Hashable, ...] = ()
    """Code → value."""

    @classmethod
    def of(cls, values: Iterable[Hashable]) -> Column:
        code_of: dict[Hashable, int] = {}
        codes = [code_of.setdefault(v, len(code_of)) for v in values]
        return cls(np.array(codes, dtype=np.int32), MappingProxyType(code_of), tuple(code_of))

    def isin(self, wanted: Iterable[Hashable]) -> np.ndarray:
        """Boolean mask: the sites whose value is one of `wanted` (values no site has select none)."""
        codes = [code for v in wanted if (code := self.values.get(v)) is not None]
        if not codes:
            return np.zeros(len(self.codes), dtype=bool)
        if len(codes) == 1:
            return self.codes == codes[0]
        return np.isin(self.codes, codes)

    def where(self, test: Callable[[Hashable], bool]) -> np.ndarray:
        """Boolean mask: the places whose value passes `test` (asked once per distinct value)."""
        return self.map(test, dtype=bool)

    def map(self, function: Callable[[Hashable], object], dtype: type = object) -> np.ndarray:
        """Per place, `function` of its value (called once per distinct value)."""
        by_code = np.empty(len(self.by_code), dtype=dtype)
        by_code[:] = [function(value) for value in self.by_code]
        return by_code[self.codes]

    def value(self, place: int) -> Hashable:
        """The value at one place."""
        return self.by_code[self.codes[place]]

    def spread(self, per_value: Mapping[Hashable, float], default: float, dtype: type = np.float64) -> np.ndarray:
        """Per site, the number `per_value` gives its value (`default` for the others): a number worked
        out once per distinct value (a zone, a pool) spread over the sites that share it."""
        by_code = np.full(len(self.values) + 1, default, dtype=dtype)
        for value, number in per_value.items():
            code = self.values.get(value)
            if code is not None:
                by_code[code] = number
        return by_code[self.codes] if len(self.codes) else np.empty(0, dtype=dtype)


@dataclass(frozen=True, slots=True, eq=False)
class SiteTable:
    """The sites of one inventory, in the inventory's order, as columns."""

    ids: tuple[str, ...] = ()
    site_id: Column = field(default_factory=lambda: Column.of(()))
    """The ids as a column (a code per site: its position)."""
    position: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Site id → position in every column."""
    sites: tuple[Site, ...] = ()
    """By position."""
    id_objects: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    """The ids as an object array: reasons are built from it a column at a time (`np.add` on str)."""
    region: Column = field(default_factory=lambda: Column.of(()))
    zone: Column = field(default_factory=lambda: Column.of(()))
    """(region, availability zone)."""
    eip_pool: Column = field(default_factory=lambda: Column.of(()))
    """The EIP pool a site draws from: (region, eip_type_name)."""
    available: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    status: Column = field(default_factory=lambda: Column.of(()))
    geo: Mapping[str, Column] = field(default_factory=lambda: MappingProxyType({}))
    """By `GEO_FIELDS` name: the site's place, casefolded."""
    place: Mapping[str, Column] = field(default_factory=lambda: MappingProxyType({}))
    """By `GEO_FIELDS` name: the site's place as the inventory writes it."""
    operator: Column = field(default_factory=lambda: Column.of(()))
    """The site's `Operator`."""
    operator_id: Column = field(default_factory=lambda: Column.of(()))
    """Casefolded."""
    operator_name: Column = field(default_factory=lambda: Column.of(()))
    """Casefolded."""
    attributes: Mapping[str, Column] = field(default_factory=lambda: MappingProxyType({}))
    """By attribute name (`Site.attributes`): its value at each site, "" where the site has none."""

    def __len__(self) -> int:
        return len(self.ids)

    def node_position(self, node: NodeRef) -> int:
        """The position of the node's site when the node is known and agrees with its site on region
        and zone (labels it lacks are the site's): then the site's columns decide for the node. -1
        for any other node (it is decided on its own)."""
        where = self.position.get(node.site_id)
        if where is None or not node.known:
            return -1
        site = self.sites[where]
        if (node.region or site.region) != site.region or (node.zone or site.az) != site.az:
            return -1
        return where


def object_array(values: Sequence[object]) -> np.ndarray:
    """`values` as an object array, each one as it is (np.array would turn strings into a str dtype)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def build_site_table(inventory: Inventory) -> SiteTable:
    sites = list(inventory.sites.values())
    return SiteTable(
        ids=tuple(s.id for s in sites),
        site_id=Column.of(s.id for s in sites),
        position=MappingProxyType({s.id: i for i, s in enumerate(sites)}),
        sites=tuple(sites),
        id_objects=object_array([s.id for s in sites]),
        region=Column.of(s.region for s in sites),
        zone=Column.of((s.region, s.az) for s in sites),
        eip_pool=Column.of((s.region, s.eip_type_name) for s in sites),
        available=np.array([s.available for s in sites], dtype=bool),
        status=Column.of(s.status for s in sites),
        geo=MappingProxyType({name: Column.of(getattr(s, name).casefold() for s in sites) for name in GEO_FIELDS}),
        place=MappingProxyType({name: Column.of(getattr(s, name) for s in sites) for name in GEO_FIELDS}),
        operator=Column.of(s.operator for s in sites),
        operator_id=Column.of(s.operator.id.casefold() for s in sites),
        operator_name=Column.of(s.operator.name.casefold() for s in sites),
        attributes=MappingProxyType({
            name: Column.of(s.attributes.get(name, "") for s in sites)
            for name in sorted({name for s in sites for name in s.attributes})
        }),
    )
