"""What the engine makes of a check's answer (`framework.Fail`, `Joined`): which places fail and
by which outcome, which unresolvably, and their reasons.

Reasons are made only for the places asked about, and a template is formatted once per value of its
`by` column among them: the text around the site id is cut there (`MARK`) and joined to the ids a
column at a time (`np.add` on objects), so thousands of failing sites cost a few vector operations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from extender.engine.framework import Fail, Joined, Outcome, Status
from extender.engine.places import Places

MARK = "\x00"
"""Stands for the site id while a reason is formatted once for many sites."""


def _mask(value: Any, size: int) -> np.ndarray:
    """A `when`/`unresolvable` (a boolean per place, or one for all) as a boolean per place."""
    if isinstance(value, np.ndarray):
        return value
    return np.full(size, bool(value))


def when(outcome: Outcome, size: int) -> np.ndarray:
    if isinstance(outcome, Joined) and outcome.when is None:
        return np.logical_or.reduce([_mask(part.when, size) for part in outcome.parts]) if outcome.parts \
            else np.zeros(size, dtype=bool)
    return _mask(outcome.when, size)


def unresolvable(outcome: Outcome, size: int) -> np.ndarray:
    if isinstance(outcome, Joined) and outcome.unresolvable is None:
        return np.logical_or.reduce([_mask(part.when, size) & _mask(part.unresolvable, size)
                                     for part in outcome.parts]) if outcome.parts else np.zeros(size, dtype=bool)
    return _mask(outcome.unresolvable, size)


def first_failures(outcomes: Sequence[Outcome], size: int) -> np.ndarray:
    """Per place: the index of the outcome it fails by (the first whose `when` holds; -1: it passes)."""
    which = np.full(size, -1, dtype=np.intp)
    for number in range(len(outcomes) - 1, -1, -1):  # the first has the last word
        holds = outcomes[number].when
        if holds is None or isinstance(holds, np.ndarray):
            which[when(outcomes[number], size)] = number
        elif holds:
            which[:] = number
    return which


def unresolvable_at(outcomes: Sequence[Outcome], which: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Per place at `positions`: it fails (by outcome `which[position]`) and unresolvably."""
    found = np.zeros(len(positions), dtype=bool)
    by = which[positions]
    for number, outcome in enumerate(outcomes):
        mine = by == number
        if mine.any():
            found[mine] = unresolvable(outcome, len(which))[positions[mine]]
    return found


def reasons(outcome: Outcome, at: Places, positions: np.ndarray) -> np.ndarray:
    """Objects: the reason `outcome` gives each place at `positions` (which all fail by it)."""
    if isinstance(outcome, Joined):
        found = np.empty(len(positions), dtype=object)
        for part in outcome.parts:
            holds = _mask(part.when, at.size)[positions]
            if not holds.any():
                continue
            texts = reasons(part, at, positions[holds])
            before = found[holds]
            first = np.equal(before, None)
            before[first] = texts[first]
            before[~first] = before[~first] + outcome.sep + texts[~first]
            found[holds] = before
        return found
    if outcome.text is not None:
        return outcome.text[positions]
    return _formatted(outcome, at, positions)


def _formatted(fail: Fail, at: Places, positions: np.ndarray) -> np.ndarray:
    """`fail.reason` formatted once per value of `fail.by` among `positions`, joined to the site ids."""
    ids = at.site_ids[positions]
    if fail.by is None:
        codes, values = np.zeros(len(positions), dtype=np.intp), (None,)
    else:
        codes, values = fail.by.codes[positions], fail.by.by_code
    unique = np.unique(codes).tolist()
    made: list[tuple[int, str, str]] = []
    alone: dict[int, Mapping[str, object]] = {}
    for code in unique:
        if fail.by is not None:
            fields = fail.fields(values[code])  # type: ignore[operator]
        else:
            fields = fail.fields() if callable(fail.fields) else fail.fields
        if any(MARK in str(value) for value in fields.values()):  # the cut would be ambiguous
            alone[code] = fields
            continue
        pieces = fail.reason.format(site=MARK, **fields).split(MARK)
        made.append((AROUND if len(pieces) == 2 else SAME, pieces[0], pieces[-1]))
    heads = np.empty(len(values), dtype=object)
    tails = np.empty(len(values), dtype=object)
    kinds = np.full(len(values), EACH, dtype=np.int8)
    if made:
        done = [code for code in unique if code not in alone] if alone else unique
        kinds[done], heads[done], tails[done] = zip(*made)
    found = np.empty(len(positions), dtype=object)
    kind = kinds[codes]
    around = kind == AROUND
    at_code = codes[around]
    found[around] = heads[at_code] + ids[around] + tails[at_code]
    same = kind == SAME
    found[same] = heads[codes[same]]
    for k in np.flatnonzero(kind == EACH).tolist():
        found[k] = fail.reason.format(site=ids[k], **alone[int(codes[k])])
    return found


AROUND, SAME, EACH = 1, 2, 3
"""How a group's reason is made: head + site id + tail; one text for all (it names no site); formatted
for each site (a field holds `MARK`)."""


def status_at(outcomes: Sequence[Outcome], at: Places, place: int = 0) -> Status | None:
    """What `outcomes` say of one place: None when it passes."""
    which = first_failures(outcomes, at.size)
    number = int(which[place])
    if number < 0:
        return None
    where = np.array([place], dtype=np.intp)
    return Status(reasons(outcomes[number], at, where)[0], bool(unresolvable_at(outcomes, which, where)[0]))
