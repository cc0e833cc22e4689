"""The extender service: turns decoded protocol requests into engine calls and engine decisions into
protocol answers. Knows the wire types and the engine, not HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from extender.config.policy import Policy
from extender.config.policy_store import PolicyStore
from extender.domain.model import NodeRef, Placement, node_ref
from extender.engine import decide
from extender.engine.frames import NodeFrames
from extender.engine.snapshot import Snapshot
from extender.errors import PlacementsUnavailable, VMRequestError
from extender.kube.view import Binder, ClusterView, PlacementSource, StaticCluster
from extender.ops.observe import DecisionEvents, Observer, observed
from extender.protocol.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionArgs,
    ExtenderPreemptionResult,
    HostPriority,
    MetaPod,
    MetaVictims,
    NodeList,
    decode_node_heads,
)

ERR_NO_BINDER = "site-extender cannot bind: no cluster is configured (SITE_EXTENDER_KUBE=none)"


@dataclass(frozen=True, slots=True)
class _SnapshotKey:
    policy_generation: int
    placement_versions: tuple[int, ...]


class Extender:
    """Filter and prioritize over the current policy and the cluster's placements."""

    def __init__(self, policies: PolicyStore, cluster: ClusterView,
                 sources: Sequence[PlacementSource] = (), binder: Binder | None = None) -> None:
        self.policies = policies
        self.cluster = cluster
        self.sources: tuple[PlacementSource, ...] = (cluster, *sources)
        self.binder = binder
        self.fold_unresolvable = False
        """Answer unresolvable failures in `FailedNodes` too (`SITE_EXTENDER_FOLD_UNRESOLVABLE`): kube-scheduler
        before 1.21 reads no `FailedAndUnresolvableNodes`, and would show those nodes without a reason."""
        self.admission = threading.Lock()
        """Held by whatever takes stock after a check (the binder's check-then-reserve), so that two
        such decisions never both take the last slot: every admission path must hold it."""
        self.observer: Observer | None = None
        """Logs and counts each verb (`observed`); the app sets it."""
        self.events: DecisionEvents | None = None
        """With a cluster, the pod events that follow decisions; the app sets it, the observer calls it."""
        self._lock = threading.Lock()
        self._snapshot: tuple[_SnapshotKey, Snapshot] | None = None
        self._frames: NodeFrames | None = None

    def view(self) -> tuple[Policy, Snapshot]:
        """The current policy and the snapshot of its inventory and placements (rebuilt only on change)."""
        generation, policy = self.policies.versioned()
        # The other sources first, the cluster last: a reservation is released only after the cache
        # holds the bound pod, so read in this order a placement in flight is seen at least once
        # (and `_unique` counts it once, the reservation's version first: it has the flavor chosen);
        # read the other way round it could slip between the two.
        answers = self._answers()
        key = _SnapshotKey(generation, tuple(version for version, _ in answers))
        cached = self._snapshot
        if cached is not None and cached[0] == key:
            return policy, cached[1]
        with self._lock:
            cached = self._snapshot
            if cached is not None and cached[0] == key:  # another thread built it meanwhile
                return policy, cached[1]
            previous = cached[1] if cached else None
            snapshot = Snapshot.build(policy.inventory, _unique(answers), previous=previous)
            self._snapshot = (key, snapshot)
        return policy, snapshot

    def placements_except(self, excluded: PlacementSource) -> list[Placement]:
        """Every placement once, from every source but `excluded`, read in the order `view` reads."""
        return _unique(self._answers(excluded))

    def _answers(self, excluded: PlacementSource | None = None) -> list[tuple[int, Sequence[Placement]]]:
        """Each source's (version, placements), the cluster last (see `view`)."""
        return [source.placements() for source in reversed(self.sources) if source is not excluded]

    def nodes(self, args: ExtenderArgs) -> list[NodeRef]:
        """The nodes asked about: from the full NodeList when sent, else resolved by name."""
        if args.Nodes is not None:
            return [node_ref(h.metadata.name, h.metadata.labels) for h in decode_node_heads(args.Nodes)]
        return self.cluster.resolve(args.NodeNames or [])

    def _asked(self, args: ExtenderArgs, snapshot: Snapshot) -> tuple[list[NodeRef], decide.Frame | None]:
        """The nodes asked about and, in cache mode, their frame in `snapshot` (`_frame`)."""
        if args.Nodes is not None:
            return self.nodes(args), None
        return self._frame(args.NodeNames or [], snapshot)

    def _frame(self, names: Sequence[str], snapshot: Snapshot) -> tuple[list[NodeRef], decide.Frame]:
        """`cluster.resolve(names)` and the nodes' site positions, from a memo by node name that lives
        as long as the inventory and the cluster's node refs (`NodeFrames`)."""
        generation = self.cluster.node_generation()
        frames = self._frames
        if frames is None or frames.table is not snapshot.table or frames.generation != generation or frames.full():
            frames = self._frames = NodeFrames(snapshot.table, generation)
        return frames.frame(self.cluster, names)

    @observed("filter")
    def filter(self, args: ExtenderArgs) -> tuple[ExtenderFilterResult, decide.FilterDecision]:
        """The answer to /filter, and the engine's decision it comes from (its failure counts)."""
        policy, snapshot = self.view()
        nodes, frame = self._asked(args, snapshot)
        decision = decide.filter_nodes(policy, snapshot, args.Pod, nodes, frame)
        failed, unresolvable = decision.failed, decision.unresolvable
        if self.fold_unresolvable and unresolvable:
            failed, unresolvable = {**failed, **unresolvable}, {}
        result = ExtenderFilterResult(FailedNodes=failed, FailedAndUnresolvableNodes=unresolvable)
        if args.Nodes is not None:
            passed = set(decision.passed)
            items = [raw for raw, node in zip(args.Nodes.items or (), nodes) if node.name in passed]
            result.Nodes = NodeList(metadata=args.Nodes.metadata, items=items)
        else:
            result.NodeNames = decision.passed
        return result, decision

    @observed("prioritize")
    def prioritize(self, args: ExtenderArgs) -> tuple[list[HostPriority], HostPriority | None]:
        """The answer to /prioritize, and its first best-scored node (None without nodes)."""
        policy, snapshot = self.view()
        nodes, frame = self._asked(args, snapshot)
        scores = decide.node_scores(policy, snapshot, args.Pod, nodes, frame)
        names = frame.names.tolist() if frame is not None else [node.name for node in nodes]
        answer = list(map(HostPriority, names, scores.tolist()))
        return answer, (answer[int(scores.argmax())] if answer else None)

    @observed("bind")
    def bind(self, args: ExtenderBindingArgs) -> tuple[ExtenderBindingResult, Any]:
        """The answer, and what the binder tells the log beside it."""
        if self.binder is None:
            return ExtenderBindingResult(Error=ERR_NO_BINDER), None
        return self.binder.bind(args)

    @observed("preempt")
    def preempt(self, args: ExtenderPreemptionArgs) -> ExtenderPreemptionResult:
        """Keep the nodes where evicting the victims lets the VM fit under the policy, each with its
        victims that exist on it (with a cluster: bound there per the cache); answer by uid."""
        policy, snapshot = self.view()
        try:
            request = decide.read_request(policy, args.Pod)
        except VMRequestError:
            return ExtenderPreemptionResult(NodeNameToMetaVictims={})
        candidates = self._victims(args)
        kept = set(decide.preempt_nodes(policy, snapshot, request,
                                        [(node, frozenset(uids)) for node, uids, _ in candidates]))
        return ExtenderPreemptionResult(NodeNameToMetaVictims={
            node.name: MetaVictims(Pods=[MetaPod(UID=uid) for uid in uids], NumPDBViolations=pdb)
            for node, uids, pdb in candidates if node.name in kept
        })

    def _victims(self, args: ExtenderPreemptionArgs) -> list[tuple[NodeRef, list[str], int]]:
        """Per node asked (either form of the request): the node and the uids of its victims that
        exist, nodes without any left out. Without a cluster nothing can be checked: the scheduler's
        word is taken."""
        asked: list[tuple[str, list[str], int]] = []
        if args.NodeNameToMetaVictims is not None:
            for name, meta in args.NodeNameToMetaVictims.items():
                asked.append((name, [p.UID for p in meta.Pods or () if p.UID], meta.NumPDBViolations))
        elif args.NodeNameToVictims is not None:
            for name, victims in args.NodeNameToVictims.items():
                uids = [p.metadata.uid for p in victims.Pods or () if p.metadata.uid]
                asked.append((name, uids, victims.NumPDBViolations))
        checked = not isinstance(self.cluster, StaticCluster)
        nodes = self.cluster.resolve([name for name, _, _ in asked])
        known = self.cluster.pods(uid for _, uids, _ in asked for uid in uids) if checked else {}
        found = []
        for node, (name, uids, pdb) in zip(nodes, asked):
            if not node.known:
                continue
            if checked:
                uids = [uid for uid in uids if uid in known and known[uid].node == name]
            uids = list(dict.fromkeys(uids))
            if uids:
                found.append((node, uids, pdb))
        return found

    def ready(self) -> dict[str, object]:
        """Readiness detail: policy loaded, cluster view synced, every other placement source readable."""
        return {
            "policy": self.policies.status(),
            "cluster_synced": self.cluster.synced(),
            "cluster": self.cluster.stats(),
            "placements_error": self.placements_problem(),
        }

    def placements_problem(self) -> str | None:
        """Why some placement source (the allocation store...) cannot be read now, None when all can."""
        for source in self.sources:
            if source is self.cluster:
                continue
            try:
                source.placements()
            except PlacementsUnavailable as exc:
                return str(exc)
        return None


def _unique(answers: Sequence[tuple[int, Sequence[Placement]]]) -> list[Placement]:
    """Every placement once (by key, the pod uid): the first source that has it wins."""
    seen: set[str] = set()
    unique: list[Placement] = []
    for _, placed in answers:
        keys = [p.key for p in placed]
        fresh = set(keys)
        if len(fresh) == len(keys) and "" not in fresh and not fresh & seen:
            unique.extend(placed)  # the common case, the node cache's thousands: no key seen before
        else:
            for placement in placed:
                if not placement.key:
                    unique.append(placement)
                elif placement.key not in seen:
                    seen.add(placement.key)
                    unique.append(placement)
            continue
        seen |= fresh
    return unique
