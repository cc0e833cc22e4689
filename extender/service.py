"""The extender service: turns decoded protocol requests into engine calls and engine decisions into
protocol answers. Knows the wire types and the engine, not HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from extender import engine
from extender.cluster import ClusterView, PlacementSource
from extender.framework import Snapshot
from extender.model import NodeRef, node_ref
from extender.policy import Policy
from extender.policy_store import PolicyStore
from extender.wire import (
    ExtenderArgs,
    ExtenderFilterResult,
    HostPriority,
    NodeList,
    decode_node_heads,
)


@dataclass(frozen=True, slots=True)
class _SnapshotKey:
    policy_generation: int
    placement_versions: tuple[int, ...]


class Extender:
    """Filter and prioritize over the current policy and the cluster's placements."""

    def __init__(self, policies: PolicyStore, cluster: ClusterView,
                 sources: Sequence[PlacementSource] = ()) -> None:
        self.policies = policies
        self.cluster = cluster
        self.sources: tuple[PlacementSource, ...] = (cluster, *sources)
        self._lock = threading.Lock()
        self._snapshot: tuple[_SnapshotKey, Snapshot] | None = None

    def view(self) -> tuple[Policy, Snapshot]:
        """The current policy and the snapshot of its inventory and placements (rebuilt only on change)."""
        generation, policy = self.policies.versioned()
        answers = [source.placements() for source in self.sources]
        key = _SnapshotKey(generation, tuple(version for version, _ in answers))
        cached = self._snapshot
        if cached is not None and cached[0] == key:
            return policy, cached[1]
        with self._lock:
            previous = self._snapshot[1] if self._snapshot else None
            snapshot = Snapshot.build(
                policy.inventory, tuple(p for _, placed in answers for p in placed), previous=previous
            )
            self._snapshot = (key, snapshot)
        return policy, snapshot

    def nodes(self, args: ExtenderArgs) -> list[NodeRef]:
        """The nodes asked about: from the full NodeList when sent, else resolved by name."""
        if args.Nodes is not None:
            return [node_ref(h.metadata.name, h.metadata.labels) for h in decode_node_heads(args.Nodes)]
        return self.cluster.resolve(args.NodeNames or [])

    def filter(self, args: ExtenderArgs) -> ExtenderFilterResult:
        nodes = self.nodes(args)
        decision = engine.filter_nodes(*self.view(), args.Pod, nodes)
        result = ExtenderFilterResult(
            FailedNodes=decision.failed, FailedAndUnresolvableNodes=decision.unresolvable
        )
        if args.Nodes is not None:
            passed = set(decision.passed)
            items = [raw for raw, node in zip(args.Nodes.items or (), nodes) if node.name in passed]
            result.Nodes = NodeList(metadata=args.Nodes.metadata, items=items)
        else:
            result.NodeNames = decision.passed
        return result

    def prioritize(self, args: ExtenderArgs) -> list[HostPriority]:
        scores = engine.prioritize_nodes(*self.view(), args.Pod, self.nodes(args))
        return [HostPriority(Host=name, Score=score) for name, score in scores]

    def ready(self) -> dict[str, object]:
        """Readiness detail: policy loaded and cluster view synced."""
        return {
            "policy": self.policies.status(),
            "cluster_synced": self.cluster.synced(),
            "cluster": self.cluster.stats(),
        }
