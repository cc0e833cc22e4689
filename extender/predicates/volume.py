"""Volume: for each requested volume type, the pools of that type in the site's availability zone can
still provision the requested GB: Σ pool ceiling − already placed ≥ requested.

The ceiling of a pool (`capacity.pool_ceiling`) follows Cinder's capacity filter rather than the bare
`total × max_over_subscription_ratio − provisioned`:
- `reserved_percentage` (a percentage of the total, 0..100, as Cinder reports it) is held back by the
  operator for the backend's own use: it comes off the total before anything else.
- Over-subscription only exists for thin pools: a pool without `thin_provisioning_support`, or with a
  ratio below 1, allocates every GB for real, so its ratio counts as 1 (Cinder ignores the ratio
  there too).
So thin: total × (1 − reserved/100) × ratio − provisioned; thick: total × (1 − reserved/100) −
provisioned. With reserved 0 and a thin pool this is exactly the issue's formula. `free_capacity_gb`
is not used: it is a moment's reading of the backend, while provisioned + placed is the accounting
this extender keeps, and the pools of a zone are summed as one (a VM's volumes may land in any).

Volume usage is shared by every site of the zone (`Snapshot.storage_by_zone`). Unresolvable when the
zone has no pool of the type or the request exceeds the ceiling even with nothing placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from extender.domain.capacity import number, volume_stock
from extender.domain.model import Site, VMRequest
from extender.engine.framework import MARK, Candidate, Snapshot, Status, no_args, reason_parts

NAME = "Volume"
REASON_NO_POOL = "Volume: no {volume_type} pool in {region}/{zone} (site {site})"
REASON_SHORT = (
    "Volume: {volume_type} has {left} GB left in {region}/{zone} for {site} (capacity {capacity}, placed {placed}),"
    " the request wants {wanted}"
)


_UNKNOWN = object()
MAX_ZONE_STOCKS = 200_000
"""Bound of the per-inventory memo of `zone_stock` (one entry per zone, type and GB placed seen)."""


class Volume:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        if not request.storage:
            return None
        return self._status(candidate.site, _asked(request, snapshot), snapshot)

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> np.ndarray:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail
        it. For one volume type, a zone's reason is formatted once per snapshot (`ZonePieces`) and
        joined to the site ids a column at a time; else site by site."""
        table = snapshot.table
        asked = _asked(request, snapshot)
        found = np.empty(len(positions), dtype=object)
        alone = np.ones(len(positions), dtype=bool)
        if len(asked) == 1:
            volume_type, wanted, _ = asked[0]
            codes = table.zone.codes[positions]
            pieces = zone_pieces(snapshot, volume_type, codes)
            kinds = pieces.kind[codes]
            ids = table.id_objects[positions]
            short, missing = kinds == SHORT, kinds == NO_POOL
            at = codes[short]
            found[short] = pieces.head[at] + ids[short] + pieces.middle[at] + str(wanted) + pieces.tail[at]
            at = codes[missing]
            found[missing] = pieces.head[at] + ids[missing] + pieces.tail[at]
            alone = ~(short | missing)
        sites = table.sites
        for k in np.flatnonzero(alone).tolist():
            found[k] = self._status(sites[positions[k]], asked, snapshot).reason  # type: ignore[union-attr]
        return found

    def site_resolvable(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """Per site that fails: True when placements hold the GB (a zone without a pool of some type,
        or with less than wanted even with nothing placed, is unresolvable)."""
        hopeless = np.zeros(len(snapshot.table), dtype=bool)
        for volume_type, wanted in request.storage.items():
            left, capacity = volume_left(snapshot, volume_type), volume_capacity(snapshot, volume_type)
            hopeless |= (left < wanted) & (capacity < wanted)
        return ~hopeless

    @staticmethod
    def _status(site: Site, asked: list[tuple[str, int, dict]], snapshot: Snapshot) -> Status | None:
        zone = (site.region, site.az)  # the inventory's zone: pools and placements are keyed by it
        reasons = []
        unresolvable = False
        for volume_type, wanted, stocks in asked:
            stock = stocks.get(zone, _UNKNOWN)
            if stock is _UNKNOWN:
                stock = zone_stock(snapshot, volume_type, zone)
            if stock is None:
                reasons.append(REASON_NO_POOL.format(volume_type=volume_type, region=zone[0], zone=zone[1], site=site.id))
                unresolvable = True
                continue
            if stock.left_gb >= wanted:
                continue
            unresolvable = unresolvable or stock.capacity_gb < wanted
            reasons.append(stock.short(site.id, wanted))
        if not reasons:
            return None
        return Status(reasons[0] if len(reasons) == 1 else "; ".join(reasons), unresolvable)

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): their zone has the GB left of every requested type."""
        if not request.storage:
            return None
        return np.logical_and.reduce([volume_left(snapshot, t) >= wanted for t, wanted in request.storage.items()])


@dataclass(frozen=True, slots=True)
class ZoneStock:
    """`VolumeStock` of one zone and volume type, and its `REASON_SHORT` formatted but for the site
    and the GB wanted (thousands of sites may fail on volumes in one request)."""

    capacity_gb: float
    placed_gb: int
    left_gb: float
    pieces: tuple[str, ...]

    def short(self, site_id: str, wanted: int) -> str:
        """`REASON_SHORT` for a site of the zone and a request that wants `wanted` GB."""
        head, middle, tail = self.pieces
        return f"{head}{site_id}{middle}{wanted}{tail}"


def _asked(request: VMRequest, snapshot: Snapshot) -> list[tuple[str, int, dict]]:
    """(volume type, GB wanted, `zone_stock`'s memo of the type) of each volume the request asks for."""
    return [(t, wanted, snapshot.derived((NAME, "zones", t), dict)) for t, wanted in request.storage.items()]


def zone_stock(snapshot: Snapshot, volume_type: str, zone: tuple[str, str]) -> ZoneStock | None:
    """The stock of `volume_type` in `zone` (None: no pool of the type there). It depends on the
    inventory and the GB placed in the zone alone: kept per inventory by (type, zone, GB placed), it
    outlives placement changes elsewhere (and per snapshot in front of that)."""
    memo = snapshot.derived((NAME, "zones", volume_type), dict)
    found = memo.get(zone, _UNKNOWN)
    if found is _UNKNOWN:
        placed = snapshot.storage_by_zone.get((zone[0], zone[1], volume_type), 0)
        stocks = snapshot.inventory_derived((NAME, "stocks"), dict)
        key = (volume_type, zone, placed)
        found = stocks.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = _zone_stock(snapshot, volume_type, zone)
            if len(stocks) < MAX_ZONE_STOCKS:
                stocks[key] = found
        memo[zone] = found
    return found  # type: ignore[return-value]


def _zone_stock(snapshot: Snapshot, volume_type: str, zone: tuple[str, str]) -> ZoneStock | None:
    key = (zone[0], zone[1], volume_type)
    capacity = snapshot.index.volumes.get(key)
    if capacity is None:
        return None
    stock = volume_stock(capacity, snapshot.storage_by_zone.get(key, 0))
    fields = dict(volume_type=volume_type, left=number(max(0.0, stock.left_gb)), region=zone[0], zone=zone[1],
                  capacity=number(stock.capacity_gb), placed=stock.placed_gb)
    pieces = tuple(REASON_SHORT.format(site=MARK, wanted=MARK, **fields).split(MARK))
    if len(pieces) != 3:  # a name holds the marker: format the whole reason each time
        return _FormattedEachTime(stock.capacity_gb, stock.placed_gb, stock.left_gb, (), fields)
    return ZoneStock(stock.capacity_gb, stock.placed_gb, stock.left_gb, pieces)


@dataclass(frozen=True, slots=True)
class _FormattedEachTime(ZoneStock):
    fields: dict[str, object]

    def short(self, site_id: str, wanted: int) -> str:
        return REASON_SHORT.format(site=site_id, wanted=wanted, **self.fields)


UNKNOWN, SHORT, NO_POOL, EACH_SITE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True, eq=False)
class ZonePieces:
    """Per zone code of the `SiteTable` and one volume type: the reason of a site there that lacks
    the GB, formatted but for the site id (and the GB wanted: `SHORT`) or with no pool (`NO_POOL`);
    `EACH_SITE` when a name holds the marker. Filled as zones are asked about."""

    kind: np.ndarray
    head: np.ndarray
    middle: np.ndarray
    tail: np.ndarray


def zone_pieces(snapshot: Snapshot, volume_type: str, codes: np.ndarray) -> ZonePieces:
    """The `ZonePieces` of `volume_type`, with the zones of `codes` filled in."""
    zones = snapshot.table.zone
    size = len(zones.by_code)
    pieces = snapshot.derived((NAME, "pieces", volume_type), lambda: ZonePieces(
        np.zeros(size, dtype=np.int8), *(np.empty(size, dtype=object) for _ in range(3))))
    for code in np.unique(codes[pieces.kind[codes] == UNKNOWN]).tolist():
        region, zone = zones.by_code[code]  # type: ignore[misc]
        stock = zone_stock(snapshot, volume_type, (region, zone))
        if stock is None:
            parts = reason_parts(REASON_NO_POOL, volume_type=volume_type, region=region, zone=zone)
            if parts:
                pieces.head[code], pieces.tail[code] = parts
            pieces.kind[code] = NO_POOL if parts else EACH_SITE
        elif len(stock.pieces) == 3:
            pieces.head[code], pieces.middle[code], pieces.tail[code] = stock.pieces
            pieces.kind[code] = SHORT
        else:
            pieces.kind[code] = EACH_SITE
    return pieces


def volume_left(snapshot: Snapshot, volume_type: str) -> np.ndarray:
    """Per site: the GB of `volume_type` its zone can still provision (`VolumeStock.left_gb`), -inf
    where the zone has no pool of the type."""
    def build() -> np.ndarray:
        capacity = _zone_capacity(snapshot, volume_type)
        left = capacity.copy()
        codes = snapshot.table.zone.values
        for (region, zone, vtype), placed in snapshot.storage_by_zone.items():
            if vtype == volume_type and (code := codes.get((region, zone))) is not None:
                left[code] = capacity[code] - placed  # -inf stays -inf: no pool
        return left[snapshot.table.zone.codes]
    return snapshot.derived(("volume-left", volume_type), build)


def volume_capacity(snapshot: Snapshot, volume_type: str) -> np.ndarray:
    """Per site: the GB of `volume_type` its zone's pools can provision with nothing placed
    (`VolumeCapacity.capacity_gb`), -inf where the zone has no pool of the type."""
    return snapshot.inventory_derived(("volume-capacity", volume_type),
                                      lambda: _zone_capacity(snapshot, volume_type)[snapshot.table.zone.codes])


def _zone_capacity(snapshot: Snapshot, volume_type: str) -> np.ndarray:
    """Per zone code of the `SiteTable`: `VolumeCapacity.capacity_gb` of `volume_type`, -inf without a pool."""
    def build() -> np.ndarray:
        codes = snapshot.table.zone.values
        capacity = np.full(len(codes), -np.inf)
        for (region, zone, vtype), found in snapshot.index.volumes.items():
            if vtype == volume_type and (code := codes.get((region, zone))) is not None:
                capacity[code] = found.capacity_gb
        return capacity
    return snapshot.inventory_derived(("zone-capacity", volume_type), build)


def new(args: Mapping[str, Any]) -> Volume:
    no_args(NAME, args)
    return Volume()
