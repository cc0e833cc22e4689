"""The allocations store in a cluster: Allocation objects (site-extender.io), the Kubernetes API and
etcd behind it being the store, and one ledger object that serializes admission across replicas.

Reading: every replica watches the Allocations of its namespace (the node/pod cache's reflector), so
an allocation made through one replica is counted by every other's /filter as soon as its watch event
arrives (well under a second), and a deleted one releases its stock the same way.

Admission (an allocation checked against what is free, then taken) is serialized cluster-wide by
optimistic concurrency on the ledger, the ConfigMap `site-extender-admission`, which holds the
resourceVersion of the newest admitted Allocation:
  1. read the ledger (a quorum read), and wait until this replica's Allocation watch has delivered
     every write up to the revision it names (else, after `CATCH_UP_S`, list the Allocations afresh);
  2. plan against those Allocations, the cluster's pods and what this replica has in flight;
  3. create the Allocation;
  4. write the ledger, naming the new Allocation's resourceVersion, on the precondition that it is
     still the version read in step 1. If another replica admitted meanwhile, the write fails (409):
     the Allocation just created is deleted and the admission starts again from step 1.
Two admissions that both succeed wrote the ledger one after the other, so the later one read the
ledger after the earlier one wrote it, and planned with the earlier Allocation (created before that
write) counted: no two replicas ever take the same last slot. An admission that loses the race costs
the other nothing but a moment in which its short-lived Allocation is counted too (never too little).

A bind (`begin_bind`, then `commit`) takes the same steps, recording its placement in the ledger
instead of creating an Allocation; every admission counts the ledger's binds (for `BIND_TTL_S`, by pod
uid once with the pod cache's own), so an allocation through one replica counts a bind through the
other before its pod watch shows the pod bound. A bind starts from the ledger as this replica last
wrote it, when it did, rather than reading it: if another replica wrote meanwhile, step 4 fails on the
precondition and the bind starts again from a quorum read, so nothing is lost but the read in the
usual case (one scheduler binding, allocations rare). The binds a replica checks while its ledger
write is in flight are written together by the next write (group commit): each was checked with the
others reserved, on the version the write in flight leaves, so a burst costs fewer writes than binds.

Fail closed: when the API server cannot be reached or refuses, the store is unavailable (503 on the
allocation API), and the extender is not ready until the Allocation watch has listed.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec
from kubernetes.client import CoreV1Api, CustomObjectsApi

from extender.allocation.service import AdmissionConflict, AllocationExists
from extender.allocation.store import StoredAllocation, StoreUnavailable
from extender.domain.model import Placement
from extender.errors import ClusterError, ConflictError, NotFoundError, PlacementsUnavailable
from extender.kube.api import api_errors
from extender.kube.cache import KubeCache
from extender.kube.reflector import Reflector
from extender.kube.resources import ALLOCATIONS, API_VERSION, GROUP, VERSION, object_name
from extender.kube.transport import Transport, path

log = logging.getLogger(__name__)

LEDGER = "site-extender-admission"
CONFIG_MAP = "/api/v1/namespaces/{namespace}/configmaps/{name}"
LEDGER_KEY = "allocations-resource-version"
BINDS_KEY = "binds"
BIND_TTL_S = 60.0
"""How long the ledger keeps a bind: long after every replica's pod watch has shown the pod bound."""
MAX_BINDS_BYTES = 900_000
"""The ledger's binds at most, encoded: a ConfigMap holds 1 MiB. Above it (thousands of binds a minute),
the oldest binds this replica's pod watch has shown bound leave first: the pod cache counts them,
here and, by then, in every replica that is not far behind. When no such bind is left, the write is
refused with a reason rather than sent to a certain refusal."""
CATCH_UP_S = 1.0
"""How long an admission waits for this replica's watch to reach the ledger before listing afresh."""
TIMEOUT_S = 10.0
ATTEMPTS = 8


class _Meta(msgspec.Struct, frozen=True):
    name: str = ""
    resourceVersion: str = ""
    creationTimestamp: str = ""
    deletionTimestamp: str | None = None


class PlacementSpec(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    key: str
    site: str
    flavor: str
    vcpus: int
    ram: int
    need_eip: bool = False
    storage: dict[str, int] = {}
    group: str = ""


class AllocationSpec(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    replicas: int
    resource_groups: list[dict[str, Any]]
    placements: list[PlacementSpec]


class BindEntry(msgspec.Struct, frozen=True):
    """A bind admitted through the ledger, counted by every admission until the pod watches show it."""

    placement: PlacementSpec
    at: float


@dataclass(frozen=True, slots=True)
class Ledger:
    """The admission ledger as read or written: its resourceVersion (the precondition of the next
    write), the revision of the newest admitted Allocation, and its binds, decoded once."""

    resource_version: str
    revision: str
    binds: tuple[BindEntry, ...]

    def live_binds(self) -> tuple[BindEntry, ...]:
        now = time.time()
        return tuple(e for e in self.binds if now - e.at < BIND_TTL_S)


class AllocationObject(msgspec.Struct, frozen=True):
    spec: AllocationSpec
    metadata: _Meta = _Meta()


def _spec(p: Placement) -> PlacementSpec:
    return PlacementSpec(key=p.key, site=p.site_id, flavor=p.flavor_id, vcpus=p.vcpus, ram=p.ram,
                         need_eip=p.need_eip, storage=dict(p.storage), group=p.group)


def _placement(p: PlacementSpec) -> Placement:
    return Placement(key=p.key, site_id=p.site, flavor_id=p.flavor, vcpus=p.vcpus, ram=p.ram, need_eip=p.need_eip,
                     storage=MappingProxyType(dict(p.storage)), group=p.group)


def _stored(obj: AllocationObject) -> StoredAllocation:
    created = obj.metadata.creationTimestamp
    at = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) if created else 0.0
    return StoredAllocation(obj.spec.id, at, {"allocation": {"id": obj.spec.id,
                                                             "resource_groups": obj.spec.resource_groups}})


_object = msgspec.json.Decoder(AllocationObject)
_list = msgspec.json.Decoder(msgspec.defstruct("AllocationList", [("items", list[AllocationObject], [])]))
_ledger_version = msgspec.json.Decoder(msgspec.defstruct("Ledger", [("metadata", _Meta)]))


class ClusterAllocationStore:
    """Allocations as Allocation objects in `namespace`; a `PlacementSource` from their watch."""

    def __init__(self, custom: CustomObjectsApi, core: CoreV1Api, namespace: str, cache: KubeCache) -> None:
        self.custom = custom
        self.core = core
        self.api = Transport(core.api_client)
        """The ledger's write, on every bind's path, without the generated client's per-call layer."""
        self.namespace = namespace
        self._objects: dict[str, AllocationObject] = {}
        self._binds: tuple[BindEntry, ...] = ()
        """The binds of the ledger as last read that this replica's pod watch has not shown bound yet:
        counted until then (or until they expire)."""
        self._seen: dict[str, float] = {}
        """Pods this replica's watch has shown bound (uid -> when), for `BIND_TTL_S`: their binds in the
        ledger are the pod cache's business from then on (a pod deleted right after is released)."""
        self._version = 0
        self._view: tuple[int, tuple[Placement, ...]] = (0, ())
        self._base: Ledger | None = None
        """Where a bind starts: the ledger as this replica's last write left it (or as read afresh
        after a write of it failed). None until read."""
        self._epoch = 0
        """Bumped when a write of the ledger fails: a bind checked against an older base is checked again."""
        self._queued: list[BindTicket] = []
        self._writing = False
        self._batch = threading.Condition()
        """Guards the four above. Binds recorded while a ledger write is in flight are written
        together by the next one (group commit)."""
        self._reflector: Reflector[AllocationObject] = cache.watch(ALLOCATIONS, self._list_call, AllocationObject,
                                                                    self._replace, self._apply)

    # --- the watch ----------------------------------------------------------------------------------

    def _list_call(self, watch: bool | None, **kwargs: Any) -> Any:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, ALLOCATIONS, watch=watch,
                                                         **kwargs)

    def _replace(self, items: list[AllocationObject]) -> None:
        self._objects = {o.metadata.name: o for o in items}
        self._version += 1

    def _apply(self, event: str, obj: AllocationObject) -> None:
        objects = dict(self._objects)
        if event == "DELETED":
            objects.pop(obj.metadata.name, None)
        else:
            objects[obj.metadata.name] = obj
        self._objects = objects
        self._version += 1

    # --- PlacementSource ----------------------------------------------------------------------------

    def placements(self) -> tuple[int, Sequence[Placement]]:
        """The Allocations' placements, and the binds the ledger holds (by pod uid: counted once with
        the pod cache's own placement of the same pod)."""
        if not self._reflector.listed:  # never "nothing placed" for "not known yet"
            raise PlacementsUnavailable("the Allocations of the cluster are not listed yet")
        version, objects, binds = self._version, self._objects, self._binds
        if self._view[0] != version:
            self._view = (version, (*(_placement(p) for o in objects.values() for p in o.spec.placements),
                                    *(_placement(b.placement) for b in binds)))
        return self._view

    def seen_bound(self, uid: str) -> None:
        """The pod watch shows the pod `uid` bound with its placement: the ledger's bind of it, if any,
        is no longer counted here."""
        now = time.monotonic()
        seen = {k: t for k, t in self._seen.items() if now - t < BIND_TTL_S} if len(self._seen) > 1000 else self._seen
        seen[uid] = now
        self._seen = seen
        if any(b.placement.key == uid for b in self._binds):
            self._binds = tuple(b for b in self._binds if b.placement.key != uid)
            self._version += 1

    # --- reads --------------------------------------------------------------------------------------

    def get(self, allocation_id: str) -> StoredAllocation | None:
        try:
            with self._available("read"), api_errors():
                response = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, ALLOCATIONS, object_name(allocation_id), _preload_content=False,
                    _request_timeout=TIMEOUT_S)
                obj = _object.decode(_read(response))
        except NotFoundError:
            return None
        return _stored(obj) if obj.spec.id == allocation_id else None

    def list(self) -> list[StoredAllocation]:
        return sorted((_stored(o) for o in self._fresh()), key=lambda s: (s.created_at, s.id))

    def _fresh(self) -> list[AllocationObject]:
        """Every Allocation as of now (a quorum list, not the watch)."""
        with self._available("list"), api_errors():
            response = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, ALLOCATIONS,
                                                                 _preload_content=False, _request_timeout=TIMEOUT_S)
            return _list.decode(_read(response)).items

    # --- writes -------------------------------------------------------------------------------------

    def delete(self, allocation_id: str) -> bool:
        """Release an allocation: its Allocation goes, and every replica's watch frees its stock."""
        if self.get(allocation_id) is None:
            return False
        try:
            with self._available("delete"), api_errors():
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, ALLOCATIONS,
                                                            object_name(allocation_id), _request_timeout=TIMEOUT_S)
        except NotFoundError:
            return False
        return True

    @contextmanager
    def transaction(self) -> Iterator[ClusterTransaction]:
        """One admission (steps 1 to 4 above); raises `AdmissionConflict` when another replica admitted
        meanwhile (nothing was kept: plan again)."""
        with self._available("admit"):
            ledger, objects = self._caught_up()
            txn = ClusterTransaction(self, objects)
            yield txn
            if txn.created is not None:
                name, revision = txn.created
                try:
                    with self._writer():
                        self._base = self._write_ledger(ledger, revision, ())
                except (ClusterError, AdmissionConflict):
                    self._undo(name)
                    raise

    def begin_bind(self) -> BindTicket:
        """A bind's admission, step 1: the ledger caught up with (its binds counted in `placements`),
        from this replica's last write when there is one. Called under the extender's admission lock
        (as allocations are), so the check that follows sees every bind this replica has in flight;
        the ticket then takes the bind's placement (`record`) and `commit` writes it."""
        with self._batch:
            base, epoch = self._base, self._epoch
        with self._available("admit"):
            ledger, _ = self._caught_up(base)
        if base is None:
            with self._batch:
                if self._epoch == epoch and self._base is None:
                    self._base = ledger
        return BindTicket(self, epoch)

    def commit(self, ticket: BindTicket) -> None:
        """Step 4 for a bind: returns once a ledger write holds its placement. The binds recorded while
        another write is in flight go together in the next one, on the version that write left (every
        one of them was checked with the others reserved). Raises `AdmissionConflict` when another
        replica wrote meanwhile (the caller drops what it reserved and checks again), `StoreUnavailable`
        when the API server fails."""
        if ticket.placement is None:
            return
        with self._batch:
            while not ticket.done and ticket.error is None:
                if ticket.epoch != self._epoch or self._base is None:
                    if ticket in self._queued:
                        self._queued.remove(ticket)
                    ticket.error = AdmissionConflict("another replica admitted meanwhile")
                elif self._writing:
                    self._batch.wait()
                else:
                    # every ticket recorded on this base; older ones are refused on their own
                    batch, self._queued = [t for t in self._queued if t.epoch == self._epoch], []
                    self._write_batch(batch)
        if ticket.error is not None:
            raise ticket.error

    def _write_batch(self, batch: list[BindTicket]) -> None:
        """With `_batch` held: one ledger write of `batch`, the lock let go meanwhile."""
        base, self._writing = self._base, True
        assert base is not None
        self._batch.release()
        try:
            written: Ledger | None = self._write_ledger(base, base.revision, [t.placement for t in batch if t.placement])
            error: Exception | None = None
        except AdmissionConflict as exc:
            written, error = None, exc
        except Exception as exc:  # noqa: BLE001 - every ticket of the batch must hear of it, or its thread waits forever
            written, error = None, StoreUnavailable(f"allocation store unavailable: cannot admit Allocations: {exc}")
        finally:
            self._batch.acquire()
            self._writing = False
        if written is not None:
            self._base = written
            for ticket in batch:
                ticket.done = True
        else:
            self._base, self._epoch = None, self._epoch + 1
            for ticket in batch:
                ticket.error = error
        self._batch.notify_all()

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """An allocation's ledger write, never at once with a batch of binds: the base follows it, or,
        refused, is read afresh (and binds checked against the old one are checked again)."""
        with self._batch:
            while self._writing:
                self._batch.wait()
            self._writing = True
        failed = True
        try:
            yield
            failed = False
        finally:
            with self._batch:
                self._writing = False
                if failed:
                    self._base, self._epoch = None, self._epoch + 1
                self._batch.notify_all()

    def _caught_up(self, ledger: Ledger | None = None) -> tuple[Ledger, list[AllocationObject]]:
        """Step 1: the ledger (read, unless given), and every Allocation admitted up to it; the ledger's
        binds counted."""
        if ledger is None:
            ledger = self._read_ledger()
        revision = int(ledger.revision or 0)
        if self._reflector.wait_for(revision, CATCH_UP_S):
            objects = list(self._objects.values())
        else:
            log.warning("allocations watch behind the ledger (%d < %d): listing afresh", self._reflector.revision,
                        revision)
            objects = self._fresh()
        binds = tuple(b for b in ledger.live_binds() if b.placement.key not in self._seen)
        if binds != self._binds:
            self._binds = binds
            self._version += 1
        return ledger, objects

    @contextmanager
    def _available(self, what: str) -> Iterator[None]:
        try:
            yield
        except (NotFoundError, ConflictError):
            raise
        except ClusterError as exc:
            raise StoreUnavailable(f"allocation store unavailable: cannot {what} Allocations: {exc}") from exc

    def _read_ledger(self) -> Ledger:
        """The ledger as of now (a quorum read), created first if missing (any replica may, one wins)."""
        try:
            with api_errors():
                found = self.core.read_namespaced_config_map(LEDGER, self.namespace, _request_timeout=TIMEOUT_S)
        except NotFoundError:
            self.create_ledger()
            with api_errors():
                found = self.core.read_namespaced_config_map(LEDGER, self.namespace, _request_timeout=TIMEOUT_S)
        data = found.data or {}
        return Ledger(found.metadata.resource_version, data.get(LEDGER_KEY) or "0", _decoded_binds(data.get(BINDS_KEY)))

    def _write_ledger(self, ledger: Ledger, revision: str, binds: Sequence[Placement]) -> Ledger:
        """Step 4: the ledger replaced on the precondition of the version read in step 1, naming
        `revision` and holding its live binds and `binds`; the ledger as written."""
        now = time.time()
        entries = (*ledger.live_binds(), *(BindEntry(_spec(bind), now) for bind in binds))
        encoded = msgspec.json.encode(entries)
        if len(encoded) > MAX_BINDS_BYTES:
            entries, encoded = self._within_bound(entries)
        data = {LEDGER_KEY: revision, BINDS_KEY: encoded.decode()}
        body = {"metadata": {"name": LEDGER, "namespace": self.namespace, "resourceVersion": ledger.resource_version},
                "data": data}
        try:
            written = _ledger_version.decode(self.api.request(
                "PUT", path(CONFIG_MAP, namespace=self.namespace, name=LEDGER), body, timeout=TIMEOUT_S))
        except ConflictError as exc:
            raise AdmissionConflict(f"another replica admitted meanwhile: {exc.message}") from exc
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ClusterError(f"the API server's answer to the ledger's write cannot be read: {exc}") from exc
        return Ledger(written.metadata.resourceVersion, revision, entries)

    def _within_bound(self, entries: tuple[BindEntry, ...]) -> tuple[tuple[BindEntry, ...], bytes]:
        """`entries` without as many of the oldest binds already seen bound as it takes to fit
        `MAX_BINDS_BYTES`; `ClusterError` when even all of those do not make room."""
        size = 2 + sum(len(msgspec.json.encode(e)) + 1 for e in entries)  # [ ] and a comma each
        dropped: set[str] = set()
        for entry in sorted((e for e in entries if e.placement.key in self._seen), key=lambda e: e.at):
            if size <= MAX_BINDS_BYTES:
                break
            dropped.add(entry.placement.key)
            size -= len(msgspec.json.encode(entry)) + 1
        kept = tuple(e for e in entries if e.placement.key not in dropped)
        encoded = msgspec.json.encode(kept)
        if len(encoded) > MAX_BINDS_BYTES:
            raise ClusterError(f"the admission ledger {LEDGER} is full: {len(kept)} binds of the last "
                               f"{BIND_TTL_S:.0f} s not yet seen bound take {len(encoded):,} bytes, above "
                               f"{MAX_BINDS_BYTES:,}; binds resume as their pods show bound")
        log.warning("admission ledger near its size limit: %d binds already seen bound left it early", len(dropped))
        return kept, encoded

    def _undo(self, name: str) -> None:
        try:
            with api_errors():
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, ALLOCATIONS, name,
                                                            _request_timeout=TIMEOUT_S)
        except NotFoundError:
            pass
        except ClusterError as exc:  # it stays counted, never too little: said, not hidden
            log.error("Allocation %s of a lost admission could not be deleted: %s", name, exc)

    def create_ledger(self) -> None:
        body = {"metadata": {"name": LEDGER, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/part-of": "site-extender"}}, "data": {LEDGER_KEY: "0"}}
        try:
            with api_errors():
                self.core.create_namespaced_config_map(self.namespace, body, _request_timeout=TIMEOUT_S)
        except ConflictError:
            pass


def _decoded_binds(text: str | None) -> tuple[BindEntry, ...]:
    try:
        return msgspec.json.decode(text or "[]", type=tuple[BindEntry, ...])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:  # only this code writes it: unreadable is tampered
        raise StoreUnavailable(f"the admission ledger {LEDGER} holds unreadable binds: {exc}") from exc


class BindTicket:
    """A bind's place in the ledger: `record` its placement (under the admission lock), then `commit`."""

    def __init__(self, store: ClusterAllocationStore, epoch: int) -> None:
        self.store = store
        self.epoch = epoch
        self.placement: Placement | None = None
        self.done = False
        self.error: Exception | None = None

    def record(self, placement: Placement) -> None:
        with self.store._batch:
            self.placement = placement
            self.store._queued.append(self)

    def commit(self) -> None:
        self.store.commit(self)


class ClusterTransaction:
    """What an allocation does inside `ClusterAllocationStore.transaction()`."""

    def __init__(self, store: ClusterAllocationStore, objects: list[AllocationObject]) -> None:
        self.store = store
        self.objects = objects
        self.created: tuple[str, str] | None = None
        """(name, resourceVersion) of the Allocation this admission created."""

    def placements(self) -> tuple[Placement, ...]:
        """What the Allocations admitted up to the ledger hold, and the binds the ledger holds."""
        return (*(_placement(p) for o in self.objects for p in o.spec.placements),
                *(_placement(b.placement) for b in self.store._binds))

    def exists(self, allocation_id: str) -> bool:
        return self.store.get(allocation_id) is not None

    def insert(self, allocation_id: str, answer: dict[str, Any], placements: Sequence[Placement]) -> None:
        groups = answer["allocation"]["resource_groups"]
        name = object_name(allocation_id)
        body = {"apiVersion": API_VERSION, "kind": "Allocation", "metadata": {"name": name, "namespace": self.store.namespace},
                "spec": {"id": allocation_id, "replicas": len(groups), "resourceGroups": groups,
                         "placements": [msgspec.to_builtins(_spec(p)) for p in placements]}}
        try:
            with self.store._available("create"), api_errors():
                response = self.store.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.store.namespace, ALLOCATIONS, body, _preload_content=False,
                    _request_timeout=TIMEOUT_S)
                created = msgspec.json.decode(_read(response), type=AllocationObject)
        except ConflictError:  # the same id created through another replica meanwhile
            raise AllocationExists(allocation_id) from None
        self.created = (name, created.metadata.resourceVersion)
        sites = ",".join(dict.fromkeys(g["selected"]["node_id"] for g in groups))
        try:
            with api_errors():
                self.store.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, self.store.namespace, ALLOCATIONS, name,
                    {"status": {"phase": "Allocated", "sites": sites}}, _content_type="application/merge-patch+json",
                    _request_timeout=TIMEOUT_S)
        except ClusterError as exc:  # the Allocation holds its stock all the same; only kubectl's columns lack
            log.warning("Allocation %s: status not written: %s", name, exc)


def _read(response: Any) -> bytes:
    try:
        return response.data
    finally:
        response.release_conn()
