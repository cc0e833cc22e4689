"""List, then watch: one kind of object kept current from the API server, in a background thread.

The discipline of client-go's reflector, which every watched kind of the extender shares (nodes, pods,
the inventory's sites and regions, allocations): list (all pages) and hand the whole set over; watch from
the list's resourceVersion, with bookmarks, until the server ends the watch, then watch again from the
last version seen. A 410 Gone (the version is too old) lists again at once; any other error (a broken
stream, the server unreachable, an error status) lists again after a back-off that doubles up to a
ceiling and resets on success.

The stream is read here (not through `kubernetes.watch.Watch`, whose raw mode cannot report ERROR
events) and decoded with msgspec into the few fields the extender reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from kubernetes.watch.watch import iter_resp_lines

from extender.errors import ApiError, ClusterError, GoneError
from extender.kube.api import api_errors

log = logging.getLogger(__name__)

PAGE_SIZE = 500

T = TypeVar("T")


class _ListMeta(msgspec.Struct, frozen=True):
    resourceVersion: str = ""
    continue_: str = msgspec.field(name="continue", default="")


class _Versioned(msgspec.Struct, frozen=True):
    resourceVersion: str = ""


class _Head(msgspec.Struct, frozen=True):
    metadata: _Versioned = _Versioned()


class _RawEvent(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


_ERRORS: dict[int, type[ApiError]] = {410: GoneError}
_event_decoder = msgspec.json.Decoder(_RawEvent)
_head_decoder = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class Timing:
    """How the loops pace themselves (tests shorten these)."""

    watch_timeout: int = 300
    """timeoutSeconds of each watch: the server ends it then, and it starts again from the last version."""
    request_timeout: float = 30.0
    """Connect and read timeout of a list; a watch reads for `watch_timeout` + this without data."""
    backoff_min: float = 0.5
    backoff_max: float = 30.0


class Reflector(Generic[T]):
    """Keeps one kind current: `replace(items)` after each list, `apply(type, item)` per watch event
    (ADDED, MODIFIED, DELETED), both called from this reflector's thread only.

    `list_call(watch, **kwargs)` is the client's list method of the kind: it lists with `watch=None`
    and watches with `watch=True`; `item` is the msgspec type of one object."""

    def __init__(self, kind: str, list_call: Callable[..., Any], item: type[T],
                 replace: Callable[[list[T]], object], apply: Callable[[str, T], object], *,
                 timing: Timing, stop: threading.Event, counters: dict[str, int] | None = None) -> None:
        self.kind = kind
        self.timing = timing
        self._list_call = list_call
        self._replace = replace
        self._apply = apply
        self._stop = stop
        self.counters = counters if counters is not None else {"relists": 0, "watch_errors": 0, "events": 0}
        self.listed = False
        """True once a first full list has been handed over."""
        self.heard: float | None = None
        """monotonic() of the last answer from the server (a list page, an event, a watch's end)."""
        self.revision = 0
        """The newest resourceVersion handed over (a list's, an event's, a bookmark's), as etcd's
        revision: every write of this kind up to it has been handed over (a watch delivers in order)."""
        self._caught_up = threading.Condition()
        self._list_decoder = msgspec.json.Decoder(msgspec.defstruct(
            f"{kind}List", [("metadata", _ListMeta, _ListMeta()), ("items", list[item], [])]))  # type: ignore[valid-type]
        self._item_decoder = msgspec.json.Decoder(msgspec.defstruct(f"{kind}Event", [("object", item)]))
        self._thread: threading.Thread | None = None

    def start(self) -> Reflector[T]:
        self._thread = threading.Thread(target=self.run, name=f"site-extender-watch-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        backoff = self.timing.backoff_min
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                backoff = self.timing.backoff_min
            except GoneError as exc:
                log.info("%s watch expired (%s): listing again", self.kind, exc.message)
                version = None
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                if self._stop.is_set():
                    break
                self.counters["watch_errors"] += 1
                if isinstance(exc, ClusterError):
                    log.warning("%s list/watch failed, listing again in %.1fs: %s", self.kind, backoff, exc)
                else:
                    log.exception("%s list/watch failed, listing again in %.1fs", self.kind, backoff)
                version = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.timing.backoff_max)

    def _list(self) -> str:
        items: list[T] = []
        token = ""
        while True:
            with api_errors():
                response = self._list_call(watch=None, limit=PAGE_SIZE, _continue=token or None,
                                           _preload_content=False, _request_timeout=self.timing.request_timeout)
                try:
                    page = self._list_decoder.decode(response.data)
                except msgspec.DecodeError as exc:
                    raise ApiError(0, "BadList", f"{self.kind} list is not a valid list: {exc}") from exc
                finally:
                    response.release_conn()
            items.extend(page.items)
            token = page.metadata.continue_
            if not token:
                break
        self._replace(items)
        self._advance(page.metadata.resourceVersion)
        self.counters["relists"] += 1
        self.listed = True
        self.heard = time.monotonic()
        log.info("%s listed: %d at resourceVersion %s", self.kind, len(items), page.metadata.resourceVersion)
        return page.metadata.resourceVersion

    def _watch(self, version: str) -> str:
        """Apply events until the server ends the watch; the last resourceVersion seen."""
        with api_errors():
            response = self._list_call(watch=True, resource_version=version, allow_watch_bookmarks=True,
                                       timeout_seconds=self.timing.watch_timeout, _preload_content=False,
                                       _request_timeout=(self.timing.request_timeout,
                                                         self.timing.watch_timeout + self.timing.request_timeout))
            try:
                for line in iter_resp_lines(response):
                    if self._stop.is_set():
                        break
                    if not line.strip():
                        continue
                    try:
                        event = _event_decoder.decode(line)
                    except msgspec.DecodeError as exc:
                        raise ApiError(0, "BadEvent", f"{self.kind} watch sent an event that is not JSON: {exc}") from exc
                    self.heard = time.monotonic()
                    if event.type == "ERROR":
                        status = msgspec.json.decode(event.object, type=_Status)
                        raise _ERRORS.get(status.code, ApiError)(status.code, status.reason, status.message)
                    version = _head_decoder.decode(event.object).metadata.resourceVersion or version
                    if event.type == "BOOKMARK":
                        self._advance(version)
                        continue
                    self.counters["events"] += 1
                    try:
                        item = self._item_decoder.decode(line).object
                    except msgspec.ValidationError as exc:
                        raise ApiError(0, "BadEvent", f"{self.kind} watch sent an object not of its kind: {exc}") from exc
                    self._apply(event.type, item)
                    self._advance(version)
            finally:
                _discard(response)
        self.heard = time.monotonic()
        return version


    def _advance(self, version: str) -> None:
        try:
            revision = int(version)
        except ValueError:
            return
        with self._caught_up:
            if revision > self.revision:
                self.revision = revision
                self._caught_up.notify_all()

    def wait_for(self, revision: int, timeout: float) -> bool:
        """Whether every write of this kind up to `revision` has been handed over, waiting up to
        `timeout` seconds for the watch to get there."""
        with self._caught_up:
            return self._caught_up.wait_for(lambda: self.revision >= revision, timeout)


def _discard(response: Any) -> None:
    """End a watch response: its connection is closed (a stream read part-way cannot go back to the
    pool) and released."""
    with closing(response):
        pass
    response.release_conn()
