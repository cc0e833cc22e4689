"""Placements in flight: taken at bind, held until the watch shows the pod bound (the cache's placement
replaces it), the binding fails, or a timeout passes.

kube-scheduler binds asynchronously: the filter of the next pod can run before the bind of the last.
The bind is therefore the admission point, and what it admitted must count at once for every later
decision, before the API server has told the watch about it. A `PlacementSource` for the service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from extender.domain.model import Placement

DEFAULT_TTL_SECONDS = 60.0
"""Long enough for the watch to deliver a binding even on a busy API server; short enough that a
placement lost some other way does not hold stock for long."""


class Reservations:
    """Reserved placements by key (the pod uid). Thread-safe; expired ones drop out on read."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, Placement]] = {}
        self._version = 0
        self._view: tuple[int, tuple[Placement, ...]] = (0, ())
        self._next_expiry = float("inf")

    def reserve(self, placement: Placement) -> None:
        with self._lock:
            expires = self._clock() + self.ttl
            self._held[placement.key] = (expires, placement)
            self._next_expiry = min(self._next_expiry, expires)
            self._changed()

    def release(self, key: str) -> bool:
        """Drop the reservation of `key`; True if there was one."""
        with self._lock:
            if self._held.pop(key, None) is None:
                return False
            self._changed()
            return True

    def get(self, key: str) -> Placement | None:
        """The placement reserved for `key`, expired or not."""
        with self._lock:
            held = self._held.get(key)
        return held[1] if held is not None else None

    def placements(self) -> tuple[int, Sequence[Placement]]:
        with self._lock:
            if self._clock() >= self._next_expiry:
                self._expire()
            return self._view

    def __len__(self) -> int:
        return len(self.placements()[1])

    def _expire(self) -> None:
        now = self._clock()
        self._held = {key: held for key, held in self._held.items() if held[0] > now}
        self._next_expiry = min((expires for expires, _ in self._held.values()), default=float("inf"))
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._view = (self._version, tuple(placement for _, placement in self._held.values()))
