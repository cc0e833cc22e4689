"""What the extender knows of the cluster: node names to sites, and what is placed where.

`ClusterView` is the seam between the engine's inputs and the Kubernetes adapters in `extender.kube`.
`PlacementSource` is anything else that uses up stock (reservations in flight, allocations made
through the allocation API); the service sums every source into one snapshot.
`StaticCluster` is the view without any cluster: every node name is a site id and nothing is placed
but what the inventory already counts (`make run` on a laptop).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from extender.domain.model import NodeRef, Placement, node_ref
from extender.protocol.wire import ExtenderBindingArgs, ExtenderBindingResult, Pod


@dataclass(frozen=True, slots=True)
class BoundPod:
    """A pod the view knows as bound, and the node it is bound to."""

    pod: Pod
    node: str


class PlacementSource(Protocol):
    """Anything that uses up stock. The contract every source keeps (SQLite store, a store kept in
    the Kubernetes API, reservations): it answers what is placed now, or raises
    `PlacementsUnavailable` with the reason. Never an empty or an old answer in place of one it
    could not read: /filter would then count nothing placed and over-commit the sites."""

    def placements(self) -> tuple[int, Sequence[Placement]]:
        """(version, placements): the version changes whenever the placements do.
        Raises `PlacementsUnavailable` when the source cannot be read."""
        ...


class ClusterView(PlacementSource, Protocol):
    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        """Node refs for node names (cache mode); unknown names come back with `known=False`."""
        ...

    def pods(self, uids: Iterable[str]) -> dict[str, BoundPod]:
        """The bound pods among `uids` (preemption victims by uid); unknown uids are left out."""
        ...

    def node_generation(self) -> int:
        """Changes whenever `resolve` may answer a name it answered before with another ref."""
        ...

    def synced(self) -> bool:
        """True once the view reflects the cluster (always true without a cluster)."""
        ...

    def stats(self) -> dict[str, object]:
        """Numbers for /readyz detail and metrics (e.g. nodes, pods, last sync age)."""
        ...


class StaticCluster:
    """No cluster: node names are site ids, nothing is placed."""

    MAX_REFS = 100_000
    """Bound of the node ref memo (names come from requests)."""

    _refs: dict[str, NodeRef] | None = None
    _generation = 0

    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        # The same ref for the same name, as a node cache gives: the snapshot memoizes candidates by it.
        refs = self._refs
        if refs is None:
            refs = self._refs = {}
        try:
            return [refs[name] for name in names]
        except KeyError:
            if len(refs) >= self.MAX_REFS:
                refs.clear()
                self._generation += 1
            return [refs.get(name) or refs.setdefault(name, node_ref(name, None)) for name in names]

    def node_generation(self) -> int:
        return self._generation

    def placements(self) -> tuple[int, Sequence[Placement]]:
        return 0, ()

    def synced(self) -> bool:
        return True

    def stats(self) -> dict[str, object]:
        return {"mode": "none", "synced": True, "nodes": 0, "pods": 0, "last_sync_age_seconds": None,
                "reservations": 0}

    def pods(self, uids: Iterable[str]) -> dict[str, BoundPod]:
        return {}


class Binder(Protocol):
    def bind(self, args: ExtenderBindingArgs) -> tuple[ExtenderBindingResult, Any]:
        """Bind the pod to the node through the API; `Error` empty exactly when the pod is bound there.
        Beside the answer, what its log line should tell (`BindWrite`: the API write's time)."""
        ...
