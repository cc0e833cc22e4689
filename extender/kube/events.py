"""Kubernetes Events about VM pods (`events.k8s.io/v1`): a Normal `Placed` naming the site and flavor
when a pod is bound, a Warning `FailedPlacement` summarizing every site's reason when no site can take
it.

The official Python client has no event recorder, so this follows client-go's (`tools/events`,
`eventBroadcasterImpl`) step by step, so that Events from this extender behave like those of
kube-scheduler:
- `record` never waits for the API: the event goes to a bounded queue (1000, as client-go's
  broadcaster; a full queue drops the event and counts it) that one thread writes.
- Isomorphic events (same type, action, reason, reporting controller and instance, regarding object)
  are one Event: the first is created; the second sets `series` (count 2, lastObservedTime) with a
  strategic-merge PATCH; later ones only count in memory. Every `REFRESH_SECONDS` (30 min) the series
  in memory are written again, and a series not seen for `FINISH_SECONDS` (6 min) gets its final
  count written and leaves the cache (a single event just leaves it). So a pod retried every few
  seconds makes one Event with a growing count, and a burst of N pods at most N Events.
- A PATCH of a series whose Event is gone (expired, deleted) creates it again.
- Writes are paced by a token bucket, as client-go paces every request of a client (its defaults: 5 a
  second, bursts of 10). A burst of binds therefore does not share the API server, and this process's
  CPU, with as many Event writes: the Events follow within seconds, the queue holds them meanwhile.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from extender.engine import decide
from extender.errors import ApiError, ConflictError, NotFoundError
from extender.kube.ratelimit import TokenBucket
from extender.kube.reservations import Reservations
from extender.kube.transport import STRATEGIC_MERGE_PATCH, Transport, path

log = logging.getLogger(__name__)

REPORTING_CONTROLLER = "site-extender.io/extender"
NORMAL = "Normal"
WARNING = "Warning"
REASON_PLACED = "Placed"
REASON_FAILED = "FailedPlacement"
ACTION_BINDING = "Binding"
ACTION_SCHEDULING = "Scheduling"

MAX_QUEUED = 1000
REFRESH_SECONDS = 30 * 60
FINISH_SECONDS = 6 * 60
MAX_CACHED = 10_000
"""Isomorphic events remembered at most (the oldest go first); the finish sweep keeps it far lower."""
MAX_NOTE_BYTES = 1024
"""The API server refuses a longer `note`."""
DEFAULT_QPS = 5.0
DEFAULT_BURST = 10
MAX_TRIES = 3
RETRY_SECONDS = 1.0
TIMEOUT_S = 10
EVENTS = "/apis/events.k8s.io/v1/namespaces/{namespace}/events"
EVENT = EVENTS + "/{name}"


@dataclass(frozen=True, slots=True)
class PodRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class _Key:
    type: str
    action: str
    reason: str
    regarding: PodRef


@dataclass
class _Cached:
    name: str
    namespace: str
    body: dict[str, Any]
    event_time: float
    count: int = 1
    last_observed: float = 0.0

    def series(self) -> dict[str, Any]:
        return {"count": self.count, "lastObservedTime": micro_time(self.last_observed)}


def micro_time(at: float) -> str:
    """A `metav1.MicroTime`: RFC 3339 with microseconds, UTC."""
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_note(text: str) -> str:
    data = text.encode()
    if len(data) <= MAX_NOTE_BYTES:
        return text
    return data[: MAX_NOTE_BYTES - 3].decode(errors="ignore") + "..."


def reporting_instance() -> str:
    """As client-go: the controller and the host (the pod's name in a cluster)."""
    return f"{REPORTING_CONTROLLER}-{os.environ.get('POD_NAME') or socket.gethostname()}"


@dataclass
class EventRecorder:
    api: Transport
    instance: str = field(default_factory=reporting_instance)
    pace: TokenBucket = field(default_factory=lambda: TokenBucket(DEFAULT_QPS, DEFAULT_BURST))
    """Each API write takes a token first."""
    clock: Callable[[], float] = time.time
    dropped: int = 0
    """Events dropped because the queue was full."""
    writes: Counter[str] = field(default_factory=Counter)
    """API writes by kind (`create`, `patch`), for tests and the curious."""
    _queue: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(MAX_QUEUED))
    _cache: dict[_Key, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _next_refresh: float = 0.0
    _next_finish: float = 0.0

    # --- what the extender records ----------------------------------------------------------------

    def placed(self, pod: PodRef, site: str, region: str, zone: str, flavor: str, node: str) -> None:
        where = f"site {site} ({region}/{zone})" if region else f"site {site}"
        node_part = "" if node == site else f", node {node}"
        self.record(pod, NORMAL, REASON_PLACED, ACTION_BINDING, f"Placed on {where}, flavor {flavor}{node_part}")

    def unplaceable(self, pod: PodRef, reasons: Mapping[str, str], by_rule: Mapping[str, int]) -> None:
        """A Warning: no node of the `reasons` (node -> why) can take the pod; `by_rule` counts them by rule."""
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])))
        head = f"No site can take the VM (0 of {len(reasons)} pass{'; ' + rules if rules else ''}): "
        parts: list[str] = []
        used = len(head.encode())
        for i, (node, reason) in enumerate(reasons.items()):
            part = f"{node}: {reason}"
            rest = len(reasons) - i
            if used + len(part.encode()) + 2 + 20 > MAX_NOTE_BYTES and rest > 1:
                parts.append(f"... and {rest} more")
                break
            parts.append(part)
            used += len(part.encode()) + 2
        self.record(pod, WARNING, REASON_FAILED, ACTION_SCHEDULING, head + "; ".join(parts))

    def record(self, pod: PodRef, type_: str, reason: str, action: str, note: str) -> None:
        """Queue one occurrence; never blocks (a full queue drops it, as client-go's broadcaster does)."""
        if not pod.namespace or not pod.name:
            return
        try:
            self._queue.put_nowait((pod, type_, reason, action, short_note(note), self.clock()))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event queue full (%d waiting at %g writes a second): %d events dropped since start; "
                            "raise SITE_EXTENDER_EVENT_QPS/_BURST if this is usual", MAX_QUEUED, self.pace.qps,
                            self.dropped)

    def counts(self) -> dict[str, int]:
        """Occurrences waiting for their write, and dropped since start."""
        return {"queued": self._queue.qsize(), "dropped": self.dropped}

    # --- the writer ---------------------------------------------------------------------------------

    def start(self) -> EventRecorder:
        now = self.clock()
        self._next_refresh, self._next_finish = now + REFRESH_SECONDS, now + FINISH_SECONDS
        self._thread = threading.Thread(target=self._run, name="site-extender-events", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued occurrence is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._occurred(*item)
                now = self.clock()
                if now >= self._next_refresh:
                    self._next_refresh = now + REFRESH_SECONDS
                    self.refresh()
                if now >= self._next_finish:
                    self._next_finish = now + FINISH_SECONDS
                    self.finish()
            except Exception:  # noqa: BLE001 - events are best effort: never stop the writer
                log.exception("cannot write an event")
            finally:
                if item is not None:
                    self._queue.task_done()

    def _occurred(self, pod: PodRef, type_: str, reason: str, action: str, note: str, at: float) -> None:
        key = _Key(type_, action, reason, pod)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                cached.count += 1
                cached.last_observed = at
                if cached.count > 2:
                    return  # counted; written at the next refresh or when the series finishes
                write = ("patch", cached)
            else:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.pop(next(iter(self._cache)))
                cached = self._cache[key] = _Cached(
                    name=f"{pod.name}.{int(at * 1e9):x}", namespace=pod.namespace, event_time=at, last_observed=at,
                    body=self._body(pod, type_, reason, action, note, at))
                write = ("create", cached)
        self._write(*write)

    def _body(self, pod: PodRef, type_: str, reason: str, action: str, note: str, at: float) -> dict[str, Any]:
        return {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{pod.name}.{int(at * 1e9):x}", "namespace": pod.namespace},
            "eventTime": micro_time(at),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.instance[:128],
            "action": action,
            "reason": reason,
            "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name,
                          "uid": pod.uid},
            "note": note,
            "type": type_,
        }

    def refresh(self) -> None:
        """Write the count of every series in memory (client-go's refreshExistingEventSeries)."""
        with self._lock:
            series = [cached for cached in self._cache.values() if cached.count > 1]
        for cached in series:
            self._write("patch", cached)

    def finish(self) -> None:
        """Series not seen for FINISH_SECONDS: write their final count and forget them; single events
        older than that: forget them (client-go's finishSeries)."""
        horizon = self.clock() - FINISH_SECONDS
        with self._lock:
            ended = [(key, cached) for key, cached in self._cache.items() if cached.last_observed < horizon]
        for key, cached in ended:
            if cached.count > 1 and not self._write("patch", cached):
                continue
            with self._lock:
                if self._cache.get(key) is cached and cached.last_observed < horizon:
                    del self._cache[key]

    def _write(self, kind: str, cached: _Cached) -> bool:
        """One API write of `cached`: a series is patched as client-go does (strategic merge), the
        first occurrence created. Transport errors and 5xx are tried again; a 4xx is not."""
        error: Exception | None = None
        for attempt in range(MAX_TRIES):
            self.pace.take()
            try:
                if kind == "patch":
                    try:
                        self.api.request("PATCH", path(EVENT, namespace=cached.namespace, name=cached.name),
                                         {"series": cached.series()}, timeout=TIMEOUT_S,
                                         content_type=STRATEGIC_MERGE_PATCH)
                        self.writes["patch"] += 1
                        return True
                    except NotFoundError:
                        # the Event is gone (expired): create it again, with its series
                        self._create(cached, {**cached.body, "series": cached.series()})
                        return True
                self._create(cached, cached.body)
                return True
            except ApiError as exc:
                if isinstance(exc, ConflictError) and kind == "patch":
                    continue  # created meanwhile by the attempt before: patch it now
                if 400 <= exc.status < 500:
                    log.warning("the API server refused an event (not retried): %s", exc,
                                extra={"event": cached.name, "namespace": cached.namespace})
                    return False
                error = exc
            if attempt + 1 < MAX_TRIES:
                time.sleep(RETRY_SECONDS * (attempt + 1))
        log.warning("cannot write an event after %d tries: %s", MAX_TRIES, error,
                    extra={"event": cached.name, "namespace": cached.namespace})
        return False

    def _create(self, cached: _Cached, body: dict[str, Any]) -> None:
        self.api.request("POST", path(EVENTS, namespace=cached.namespace), body, timeout=TIMEOUT_S)
        self.writes["create"] += 1


# --- where the extender calls it -------------------------------------------------------------------------


class PodEvents:
    """Events that follow the service's decisions: a `FailedPlacement` Warning when a /filter passes no
    node of those asked, a `Placed` event after a /bind that bound the pod. The service's `Observer`
    hands every decision to `after`, beside its log line and metrics."""

    def __init__(self, service: Any, recorder: EventRecorder, reservations: Reservations) -> None:
        self.service = service
        self.recorder = recorder
        self.reservations = reservations

    def counts(self) -> dict[str, int]:
        return self.recorder.counts()

    def after(self, verb: str, args: Any, result: Any) -> None:
        try:
            if verb == "filter":
                _after_filter(self.recorder, self.service, args, result)
            elif verb == "bind" and not result.Error:
                _after_bind(self.recorder, self.service, self.reservations, args)
        except Exception:  # noqa: BLE001 - an event must never change the answer
            log.exception("cannot record the %s event", verb)


def _after_filter(recorder: EventRecorder, extender: Any, args: Any, result: Any) -> None:
    if result.Error:
        return
    passed = result.NodeNames if result.NodeNames is not None else (
        result.Nodes.items if result.Nodes is not None else None)
    if passed:
        return  # the common case: nothing more to look at on the verb's thread
    reasons = {**(result.FailedNodes or {}), **(result.FailedAndUnresolvableNodes or {})}
    if not reasons:
        return
    predicates = {p.name for p in extender.policies.current().predicates} | {decide.SITE_AVAILABILITY}
    by_rule = Counter(decide.rule_of(reason, predicates) for reason in reasons.values())
    meta = args.Pod.metadata
    recorder.unplaceable(PodRef(meta.namespace or "default", meta.name or "", meta.uid or ""), reasons, by_rule)


def _after_bind(recorder: EventRecorder, extender: Any, reservations: Reservations, args: Any) -> None:
    """The placement the bind took: held by a reservation until the cache sees the pod bound, so
    nearly always found there at once; the cache's placements are read only when the watch was
    quicker."""
    uid = args.PodUID
    placement = reservations.get(uid)
    if placement is None:
        _, bound = extender.cluster.placements()
        placement = next((p for p in bound if p.key == uid), None)
    if placement is None:
        return
    site = extender.policies.current().inventory.sites.get(placement.site_id)
    region, zone = (site.region, site.az) if site is not None else ("", "")
    recorder.placed(PodRef(args.PodNamespace, args.PodName, uid), placement.site_id, region, zone,
                    placement.flavor_id, args.Node)
