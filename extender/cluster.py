"""What the extender knows of the cluster: node names to sites, and what is placed where.

`ClusterView` is the seam between the engine's inputs and the Kubernetes adapters in `extender.kube`.
`StaticCluster` is the view without any cluster: every node name is a site id and nothing is placed
but what the inventory already counts (`make run` on a laptop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from extender.model import NodeRef, Placement, node_ref


class ClusterView(Protocol):
    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        """Node refs for node names (cache mode); unknown names come back with `known=False`."""
        ...

    def placements(self) -> tuple[int, Sequence[Placement]]:
        """(version, placements): the version changes whenever the placements do."""
        ...

    def synced(self) -> bool:
        """True once the view reflects the cluster (always true without a cluster)."""
        ...


class StaticCluster:
    """No cluster: node names are site ids, nothing is placed."""

    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        return [node_ref(name, None) for name in names]

    def placements(self) -> tuple[int, Sequence[Placement]]:
        return 0, ()

    def synced(self) -> bool:
        return True
