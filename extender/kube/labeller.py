"""The site label of bound pods whose API server did not copy it from the Binding, written off the
request path and retried.

The binder puts the label `site-extender.io/site` in the Binding's metadata with the placement
annotations. kube-apiserver copies the annotations onto the pod in the same write on every version, the
labels only from 1.35 on (the `PodTopologyLabelsAdmission` feature, which can be turned off). Rather than
guess from the server's version, the watch cache hands every pod it sees bound with its placement
recorded to `SiteLabeller.check`; a pod whose label does not name the site of its annotation is patched
here, in a thread of its own, so that no `/bind` answer waits for it. A failed patch is tried again after
a back-off; a pod that is gone or was replaced (404, or 409 on the uid precondition) is dropped.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from extender.domain.accounting import missing_site_label, site_labels
from extender.errors import ApiError, ConflictError, NotFoundError
from extender.kube.api import patch_pod
from extender.kube.transport import Transport
from extender.protocol.wire import Pod

log = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 4.0
ATTEMPTS = 8
"""Tries per pod: with the back-off doubling from 0.5 s up to 30 s, about two minutes of API trouble."""
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0


@dataclass(frozen=True, slots=True)
class _Label:
    namespace: str
    name: str
    uid: str
    site: str


class SiteLabeller:
    """A queue of pods to label and the thread that labels them (started with the first pod)."""

    def __init__(self, api: Transport, timeout: float = API_TIMEOUT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.timeout = timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, int, _Label]] = []
        """(when, order, attempt, label), a heap: retries wait for their back-off."""
        self._queued: set[str] = set()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.labelled = 0
        self.failed = 0

    def check(self, pod: Pod) -> None:
        """Queue `pod` if it is bound with its placement recorded but its site label does not say so."""
        site = missing_site_label(pod)
        if site is None:
            return
        meta = pod.metadata
        with self._cond:
            if meta.uid in self._queued or self._stop:
                return
            self._queued.add(meta.uid)
            heapq.heappush(self._due, (self._clock(), next(self._order), 1,
                                       _Label(meta.namespace, meta.name, meta.uid, site)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="site-extender-labeller", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._queued)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._due or self._due[0][0] > self._clock()):
                    self._cond.wait(None if not self._due else max(0.0, self._due[0][0] - self._clock()))
                if self._stop:
                    return
                _, _, attempt, label = heapq.heappop(self._due)
            retry = self._label(label, attempt)
            with self._cond:
                if retry:
                    backoff = min(BACKOFF_MIN * 2 ** (attempt - 1), BACKOFF_MAX)
                    heapq.heappush(self._due, (self._clock() + backoff, next(self._order), attempt + 1, label))
                else:
                    self._queued.discard(label.uid)

    def _label(self, label: _Label, attempt: int) -> bool:
        """Patch the label (uid as precondition); True to try again."""
        patch = {"metadata": {"uid": label.uid, "labels": site_labels(label.site)}}
        try:
            patch_pod(self.api, label.namespace, label.name, patch, self.timeout)
        except (NotFoundError, ConflictError) as exc:
            log.info("pod %s/%s not labelled with its site %s: %s", label.namespace, label.name, label.site, exc)
            return False
        except ApiError as exc:
            if attempt >= ATTEMPTS:
                self.failed += 1
                log.warning("pod %s/%s: giving up labelling it with its site %s after %d tries: %s",
                            label.namespace, label.name, label.site, attempt, exc)
                return False
            log.warning("pod %s/%s: labelling it with its site %s failed (try %d of %d), trying again: %s",
                        label.namespace, label.name, label.site, attempt, ATTEMPTS, exc)
            return True
        self.labelled += 1
        return False
