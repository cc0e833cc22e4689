"""Cache mode's node names, resolved once per inventory and node generation.

kube-scheduler sends thousands of node names per call, the same names call after call. Resolving
each one (`ClusterView.resolve`, then `SiteTable.node_position`) costs a few Python steps per name;
kept as columns here, a call costs one C-level look-up per name (`np.fromiter(map(slot.__getitem__,
...))`) and a few gathers. Neither depends on what is placed: the memo outlives placement changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from extender.domain.model import NodeRef
from extender.engine.decide import Frame
from extender.engine.sitetable import SiteTable, object_array
from extender.kube.view import ClusterView

MAX_NAMES = 100_000
"""Names kept per memo (they come from requests): past it, the memo starts over."""


class NodeFrames:
    """Each node name asked about, resolved with one inventory's `SiteTable` and one generation of
    the cluster's node refs: its ref and its site position, as columns by slot."""

    def __init__(self, table: SiteTable, generation: int) -> None:
        self.table = table
        self.generation = generation
        self._slot: dict[str, int] = {}
        self._rows: list[tuple[str, NodeRef, int]] = []
        self._columns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def frame(self, cluster: ClusterView, names: Sequence[str]) -> tuple[list[NodeRef], Frame]:
        """The refs of `names` and their `Frame` (names resolved on first sight)."""
        try:
            slots = np.fromiter(map(self._slot.__getitem__, names), dtype=np.intp, count=len(names))
        except KeyError:
            self._add(cluster, [name for name in dict.fromkeys(names) if name not in self._slot])
            slots = np.fromiter(map(self._slot.__getitem__, names), dtype=np.intp, count=len(names))
        refs, positions, name_objects = self._columns_for(slots)
        return refs[slots].tolist(), Frame(positions[slots], name_objects[slots])

    def full(self) -> bool:
        return len(self._slot) >= MAX_NAMES

    def _add(self, cluster: ClusterView, names: list[str]) -> None:
        refs = cluster.resolve(names)
        with self._lock:
            for name, ref in zip(names, refs):
                if name not in self._slot:
                    self._slot[name] = len(self._rows)
                    self._rows.append((name, ref, self.table.node_position(ref)))
            self._columns = None

    def _columns_for(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        columns = self._columns
        if columns is None or (slots.size and slots.max() >= len(columns[0])):
            with self._lock:
                rows = list(self._rows)
            names, refs, positions = (list(column) for column in zip(*rows)) if rows else ([], [], [])
            columns = self._columns = (object_array(refs), np.array(positions, dtype=np.intp), object_array(names))
        return columns
