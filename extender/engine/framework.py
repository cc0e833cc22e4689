"""What a plugin is, in the few words a plugin author needs.

A predicate (filter plugin) has a `name` and one `check(request, at)`; a priority (score plugin) a
`name` and one `score(request, at)`. `at` is the `Places` being decided (`extender.engine.places`):
every site of the inventory at once, or the place of one node; each attribute holds one entry per
place, so the same numpy expressions decide one node and every site alike.

- `check` answers the ways a place can fail, in the order they are tried (`Fail`, `Joined`): a place
  fails by the first whose `when` holds, and passes when none does. An empty answer: all pass.
- `score` answers a number per place in 0..100 (or one number for all).
- What a plugin reads that does not depend on the pod is a fact: a function of the snapshot and one
  site (`per_site`), one availability zone (`per_zone`) or one EIP pool (`per_pool`), read with
  `at.fact(f, *args)`. The engine works each fact out once per snapshot for every site, zone or pool,
  and again only where placements changed.
- A reason is a template with a `{site}` field and `by`, the `Column` whose value decides every other
  field (`fields(value)`): the engine formats it once per value and joins it to the site ids.

The engine (`extender.engine.decide`) owns everything else: columns, memos, which nodes a site decides,
resolvability, and formatting reasons only for the nodes that fail.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from extender.domain.model import VMRequest
    from extender.engine.places import Places
    from extender.engine.sitetable import Column

MAX_PLUGIN_SCORE = 100

class Status(NamedTuple):
    """A failed predicate at one node: why, and whether it can never pass for this request (no
    preemption helps)."""

    reason: str
    unresolvable: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Fail:
    """One way a place can fail: where (`when`), why, and whether evicting placements could help.

    The reason is either `reason`, a template formatted with `site` (the site id) and `fields`, which
    depend on nothing but the value of `by` at the place (`fields(value)`; without `by`, `fields` is a
    dict or a callable without arguments), or `text`, one ready reason per place."""

    when: Any
    """A boolean per place, or one for all: the places that fail this way (unless an earlier `Fail` already failed them)."""
    reason: str = ""
    by: Column | None = None
    fields: Callable[..., Mapping[str, object]] | Mapping[str, object] = field(default_factory=dict)
    unresolvable: Any = True
    """A boolean per place, or one for all: where no eviction can make the place pass."""
    text: np.ndarray | None = None
    """Objects: a ready reason per place (instead of `reason`)."""


@dataclass(frozen=True, slots=True, eq=False)
class Joined:
    """A failure made of parts, each a `Fail`: the reason lists, joined by `sep`, the parts whose
    `when` holds at the place. `when` (default: some part holds) and `unresolvable` (default: some
    part that holds is unresolvable) are the whole's."""

    parts: Sequence[Fail]
    when: Any = None
    unresolvable: Any = None
    sep: str = "; "


Outcome = Fail | Joined


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def check(self, request: VMRequest, at: Places) -> Sequence[Outcome]: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, request: VMRequest, at: Places) -> np.ndarray | float: ...


# --- Facts ------------------------------------------------------------------------------------------

R = TypeVar("R")


@dataclass(frozen=True, slots=True, eq=False)
class Fact(Generic[R]):
    """A pod-independent function at one grain; `fact(...)` calls it as written."""

    grain: str
    """SITE: fn(snapshot, site, region, *args), region being where the node says it is (the site's
    own for every site at once); ZONE: fn(snapshot, (region, az), *args), the site's own zone;
    POOL: fn(snapshot, (region, eip_type_name), *args), the site's own EIP pool."""
    fn: Callable[..., R]
    names: tuple[str, ...] | None
    """The fields of the NamedTuple it returns (None: it returns one value)."""
    dtypes: tuple[type, ...]
    make: Callable[..., Any] | None
    """The NamedTuple class, to hand the columns back as one."""

    def __call__(self, *args: Any) -> R:
        return self.fn(*args)

    def columns(self, values: Sequence[Any]) -> Any:
        """`values` (one per key) as arrays: one NamedTuple of arrays, or one array."""
        if self.names is None:
            return _array(values, self.dtypes[0])
        return self.make(*(_array([v[i] for v in values], dtype) for i, dtype in enumerate(self.dtypes)))  # type: ignore[misc]


SITE, ZONE, POOL = "site", "zone", "pool"


def per_site(fn: Callable[..., R]) -> Fact[R]:
    """A fact of one site (and the region the node is in): `fn(snapshot, site, region, *args)`. It
    may read the site's placements, never another site's."""
    return _fact(SITE, fn)


def per_zone(fn: Callable[..., R]) -> Fact[R]:
    """A fact of one availability zone, shared by its sites: `fn(snapshot, (region, az), *args)`."""
    return _fact(ZONE, fn)


def per_pool(fn: Callable[..., R]) -> Fact[R]:
    """A fact of one EIP pool, shared by the sites that draw from it: `fn(snapshot, (region, name), *args)`."""
    return _fact(POOL, fn)


_DTYPES: Mapping[object, type] = {bool: np.bool_, int: np.int64, float: np.float64}


def _fact(grain: str, fn: Callable[..., R]) -> Fact[R]:
    """The fact, its column types read from `fn`'s return annotation (bool, int, float; else objects)."""
    returns = typing.get_type_hints(fn).get("return")
    if isinstance(returns, type) and issubclass(returns, tuple) and hasattr(returns, "_fields"):
        hints = typing.get_type_hints(returns)
        names = tuple(returns._fields)
        return Fact(grain, fn, names, tuple(_DTYPES.get(hints[n], object) for n in names), returns)
    return Fact(grain, fn, None, (_DTYPES.get(returns, object),), None)


def _array(values: Sequence[Any], dtype: type) -> np.ndarray:
    if dtype is object:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return np.fromiter(values, dtype=dtype, count=len(values))


def no_args(name: str, args: Mapping[str, object]) -> None:
    """For the factory of a plugin without options: any arg is a mistake worth a message."""
    if args:
        raise ValueError(f"{name} takes no args, got {', '.join(sorted(args))}")


def choice_arg(args: Mapping[str, object], key: str, choices: tuple[str, ...]) -> str:
    """For the factory of a plugin with one option, `key`, that takes one of `choices` (the first is the
    default): the value, or a message naming what is wrong and what would do."""
    unknown = sorted(set(args) - {key})
    if unknown:
        raise ValueError(f"unknown arg {', '.join(unknown)}; known: {key}")
    value = args.get(key, choices[0])
    if value not in choices:
        raise ValueError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


__all__ = ["MAX_PLUGIN_SCORE", "POOL", "SITE", "ZONE", "Fact", "Fail", "FilterPlugin", "Joined", "Outcome",
           "ScorePlugin", "Status", "choice_arg", "no_args", "per_pool", "per_site", "per_zone"]
