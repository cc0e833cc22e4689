"""What the extender knows of the cluster: node names to sites, and what is placed where.

`ClusterView` is the seam between the engine's inputs and the Kubernetes adapters in `extender.kube`.
`PlacementSource` is anything else that uses up stock (reservations in flight, allocations made
through the allocation API); the service sums every source into one snapshot.
`StaticCluster` is the view without any cluster: every node name is a site id and nothing is placed
but what the inventory already counts (`make run` on a laptop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from extender.model import NodeRef, Placement, node_ref


class PlacementSource(Protocol):
    def placements(self) -> tuple[int, Sequence[Placement]]:
        """(version, placements): the version changes whenever the placements do."""
        ...


class ClusterView(PlacementSource, Protocol):
    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        """Node refs for node names (cache mode); unknown names come back with `known=False`."""
        ...

    def synced(self) -> bool:
        """True once the view reflects the cluster (always true without a cluster)."""
        ...

    def stats(self) -> dict[str, object]:
        """Numbers for /readyz detail and metrics (e.g. nodes, pods, last sync age)."""
        ...


class StaticCluster:
    """No cluster: node names are site ids, nothing is placed."""

    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        return [node_ref(name, None) for name in names]

    def placements(self) -> tuple[int, Sequence[Placement]]:
        return 0, ()

    def synced(self) -> bool:
        return True

    def stats(self) -> dict[str, object]:
        return {"mode": "none"}
