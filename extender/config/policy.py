"""Load and validate the scheduling policy (which predicates and priorities run, with which weights)
and the inventory it points at.

Every problem is collected with its path (`priorities[1].weight`) into one `PolicyError`, as
kube-scheduler's `validation_pluginargs.go` does. The global scheduler's `edgecloud_policy.yaml`
loads as it is: its plugin names are aliases.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml
from msgspec import Struct, field

from extender import strict
from extender.domain.inventory import load_inventory
from extender.domain.model import VM_ANNOTATION, Inventory
from extender.engine.framework import FilterPlugin, ScorePlugin
from extender.engine.registry import ALIASES, Registry, canonical_name, predicate_registry, priority_registry
from extender.errors import ConfigError, PolicyError

POLICY_FILE_NAMES = ("policy.yaml", "edgecloud_policy.yaml")
"""Looked for, in this order, when the policy path is a directory."""

NonVMPods = Literal["pass", "reject"]

REASON_EMPTY = "the policy is empty: it must list its predicates (and priorities)"
REASON_NO_PREDICATES = ("predicates: none listed, so every site would pass; list them, or set"
                        " options.allowNoPredicates: true to run none")


class _PluginSpec(Struct, forbid_unknown_fields=True):
    name: str
    weight: int | None = None
    args: dict[str, Any] | None = None


class _Options(Struct, forbid_unknown_fields=True):
    inventory: str = "."
    non_vm_pods: NonVMPods = field(name="nonVMPods", default="pass")
    vm_annotation: str = field(name="vmAnnotation", default=VM_ANNOTATION)
    allow_no_predicates: bool = field(name="allowNoPredicates", default=False)
    """A policy without predicates lets every site pass: it loads only when it says so."""


class _PolicyFile(Struct, forbid_unknown_fields=True):
    predicates: list[_PluginSpec] | None = None
    priorities: list[_PluginSpec] | None = None
    options: _Options | None = None
    apiVersion: str = ""
    kind: str = ""


@dataclass(frozen=True, slots=True)
class WeightedPriority:
    plugin: ScorePlugin
    weight: int


@dataclass(frozen=True, slots=True)
class Options:
    inventory_dir: Path
    non_vm_pods: NonVMPods = "pass"
    vm_annotation: str = VM_ANNOTATION


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy with its plugins built and its inventory loaded."""

    path: Path
    predicates: tuple[FilterPlugin, ...]
    priorities: tuple[WeightedPriority, ...]
    options: Options
    inventory: Inventory

    @property
    def total_weight(self) -> int:
        return sum(p.weight for p in self.priorities)


def resolve_policy_file(path: str | Path) -> Path:
    """`path` itself, or for a directory the first of `POLICY_FILE_NAMES` in it."""
    path = Path(path)
    if path.is_dir():
        for name in POLICY_FILE_NAMES:
            if (path / name).is_file():
                return path / name
        raise PolicyError([f"{path}: no {' or '.join(POLICY_FILE_NAMES)} in this directory"])
    if not path.is_file():
        raise PolicyError([f"{path}: policy file not found"])
    return path


def _build(
    specs: list[_PluginSpec], registry: Registry, section: str, kind: str, weighted: bool, problems: list[str]
) -> list[tuple[Any, int]]:
    built: list[tuple[Any, int]] = []
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        where = f"{section}[{index}]"
        name = canonical_name(spec.name)
        factory = registry.get(name)
        if factory is None:
            close = difflib.get_close_matches(spec.name, [*registry, *ALIASES], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{where}.name: unknown {kind} {spec.name!r}{hint}; known: {', '.join(sorted(registry))}")
            continue
        if name in seen:
            alias = f" ({spec.name} is an alias of {name})" if name != spec.name else ""
            problems.append(f"{where}.name: {name!r} is listed twice{alias}")
            continue
        seen.add(name)
        weight = 1
        if weighted:
            weight = 1 if spec.weight is None else spec.weight
            if weight <= 0:
                problems.append(f"{where}.weight: must be a positive integer, got {weight}")
                continue
        elif spec.weight is not None:
            problems.append(f"{where}.weight: predicates take no weight")
            continue
        try:
            built.append((factory(spec.args or {}), weight))
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}.args: {exc}")
    return built


def load_policy(path: str | Path, inventory_dir: str | Path | None = None,
                inventory: Inventory | None = None) -> Policy:
    """Read, validate and build the policy at `path` (file or directory) and its inventory.

    `inventory_dir` overrides the policy's `options.inventory` (relative paths there are relative to
    the policy file); an `inventory` given (the cluster's) is used instead of reading any files.
    Raises `PolicyError`/`InventoryError` listing every problem.
    """
    file = resolve_policy_file(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError([f"{file}: cannot be read: {exc}"]) from None
    if data is None:  # an empty file, or comments only: what a half-written ConfigMap looks like
        raise PolicyError([f"{file}: {REASON_EMPTY}"])
    try:
        raw = msgspec.convert(data, _PolicyFile)
    except msgspec.ValidationError as exc:
        raise PolicyError([f"{file}: {strict.explain(exc, _PolicyFile)}"]) from None

    problems: list[str] = []
    if not raw.predicates and not (raw.options and raw.options.allow_no_predicates):
        problems.append(REASON_NO_PREDICATES)
    predicates = _build(raw.predicates or [], predicate_registry(), "predicates", "predicate", False, problems)
    priorities = _build(raw.priorities or [], priority_registry(), "priorities", "priority", True, problems)
    options = raw.options or _Options()
    if problems:
        raise PolicyError([f"{file}: {p}" for p in problems])

    inventory_path = Path(inventory_dir) if inventory_dir else file.parent / options.inventory
    if inventory is None:
        inventory = load_inventory(inventory_path)
    return Policy(
        path=file,
        predicates=tuple(plugin for plugin, _ in predicates),
        priorities=tuple(WeightedPriority(plugin, weight) for plugin, weight in priorities),
        options=Options(
            inventory_dir=inventory_path,
            non_vm_pods=options.non_vm_pods,
            vm_annotation=options.vm_annotation,
        ),
        inventory=inventory,
    )


__all__ = ["ConfigError", "Options", "Policy", "PolicyError", "WeightedPriority", "load_policy", "resolve_policy_file"]
