"""Strict decoding: msgspec's errors for unknown fields, told with the nearest known field name.

Every user-written shape (the VM request, the policy) is a tree of msgspec Structs with
`forbid_unknown_fields=True`. msgspec then reports `Object contains unknown field `needEip` - at `$``;
`explain` turns that into `unknown field needEip (did you mean needEIP?) - at `$``, looking up the
Struct at the error's path to know which names it accepts.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import msgspec
from msgspec import inspect

_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.*?)`(?: - at `(?P<path>\$[^`]*)`)?$", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def explain(exc: msgspec.ValidationError, root: Any) -> str:
    """The message of `exc`, with a hint when it is an unknown field of a Struct under `root`."""
    message = str(exc)
    found = _UNKNOWN.match(message)
    if not found:
        return message
    name, path = found["name"], found["path"] or "$"
    known = known_fields(root, path)
    return f"unknown field {name}{nearest_hint(name, known)} - at `{path}`"


def nearest(name: str, known: list[str]) -> str | None:
    """The one of `known` that `name` most likely misspells (same letters in another case first)."""
    same_case = [k for k in known if k.lower() == name.lower()]
    close = same_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def nearest_hint(name: str, known: list[str]) -> str:
    """` (did you mean X?)` for the closest of `known`, ` (known: ...)` without one, "" without any."""
    if not known:
        return ""
    close = nearest(name, known)
    if close is not None:
        return f" (did you mean {close}?)"
    return f" (known: {', '.join(known)})"


def known_fields(root: Any, path: str) -> list[str]:
    """The wire names of the Struct found by following `path` (`$.a.b[0]`) from the type `root`."""
    info = _unwrap(inspect.type_info(root))
    for field_name, _index in _STEP.findall(path[1:]):
        if field_name:
            if not isinstance(info, inspect.StructType):
                return []
            match = next((f for f in info.fields if f.encode_name == field_name), None)
            if match is None:
                return []
            info = _unwrap(match.type)
        elif isinstance(info, (inspect.ListType, inspect.SetType, inspect.FrozenSetType, inspect.VarTupleType)):
            info = _unwrap(info.item_type)
        elif isinstance(info, inspect.DictType):
            info = _unwrap(info.value_type)
        else:
            return []
    if isinstance(info, inspect.StructType):
        return [f.encode_name for f in info.fields]
    return []


def _unwrap(info: inspect.Type) -> inspect.Type:
    """An optional or constrained type's own type (`X | None`, `Annotated[X, Meta]`)."""
    while True:
        if isinstance(info, inspect.UnionType):
            rest = [t for t in info.types if not isinstance(t, inspect.NoneType)]
            if len(rest) != 1:
                return info
            info = rest[0]
        elif isinstance(info, inspect.Metadata):
            info = info.type
        else:
            return info
