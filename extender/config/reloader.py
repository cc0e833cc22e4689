"""Reload the policy and inventory when their files change, as a kubelet ConfigMap mount changes.

kubelet writes a new ConfigMap version into a fresh timestamped directory and swaps the `..data`
symlink; `policy.yaml -> ..data/policy.yaml` then resolves to a new file (new inode). The watcher
polls a signature of every visible file (followed through the symlinks) and reloads when it moves.
A reload that fails validation keeps the last good policy (`PolicyStore.reload`); the files are
tried again when they change again. The same loop refreshes the live-state gauges of this worker.

Started once per gunicorn worker (`post_worker_init`), never at import or in `create_app`: tests that
build apps get no threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from extender.config.settings import env

if TYPE_CHECKING:
    from flask import Flask

    from extender.config.policy_store import PolicyStore
    from extender.ops.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
"""Seconds between checks. kubelet itself takes up to a minute to project a ConfigMap change."""

Signature = tuple[tuple[str, int, int, int], ...]


def interval() -> float:
    return float(env("RELOAD_INTERVAL", str(DEFAULT_INTERVAL)) or DEFAULT_INTERVAL)


def signature(paths: list[Path]) -> Signature:
    """(path, inode, mtime, size) of each file, and of each visible file of each directory."""
    entries: list[tuple[str, int, int, int]] = []
    for root in paths:
        files = [root]
        if root.is_dir():
            files = sorted(p for p in root.iterdir() if not p.name.startswith(".."))
        for file in files:
            try:
                st = os.stat(file)  # follows ..data symlinks
            except OSError:
                entries.append((str(file), -1, -1, -1))
                continue
            entries.append((str(file), st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(entries)


class Watcher:
    """Polls the policy's files and reloads the store when they change."""

    def __init__(self, store: PolicyStore, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self._seen = signature(self.paths())

    def paths(self) -> list[Path]:
        if self.store.inventory_source == "cluster":  # the inventory is watched in the cluster
            return [self.store.path]
        inventory = self.store.inventory_dir or self.store.current().options.inventory_dir
        return [self.store.path, Path(inventory)]

    def check(self) -> bool | None:
        """Reload if anything changed: True/False for the reload's result, None if nothing changed.

        What was read is known only as well as the signature taken before reading: when the files
        moved while they were read, the signature from before is kept, so the next check reloads again
        and the last write always wins."""
        paths = self.paths()
        before = signature(paths)
        if before == self._seen:
            return None
        log.info("policy or inventory files changed, reloading", extra={"paths": [str(p) for p in paths]})
        ok = self.store.reload()
        if self.paths() != paths:
            self._seen = ()  # the inventory moved with the policy: check the new files from scratch
        else:
            self._seen = before
            if signature(paths) != before:
                log.info("policy or inventory files changed while they were read; reading them again")
        if self.metrics is not None:
            self.metrics.policy_reloaded(ok)
        return ok


def start(app: Flask) -> threading.Thread | None:
    """Start the watcher thread of this process for `app` (a daemon: it dies with the worker)."""
    from extender.app import EXTENSION_KEY
    from extender.ops import metrics as metrics_module

    every = interval()
    if every <= 0:
        return None
    service = app.extensions[EXTENSION_KEY]
    metrics = metrics_module.get(app)
    watcher = Watcher(service.policies, metrics)

    if metrics is not None:
        metrics.refresh(service.cluster, service.policies)
        from extender.ops import tls

        tls.on_reload(metrics.tls_reloaded)

    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                watcher.check()
                if metrics is not None:
                    metrics.refresh(service.cluster, service.policies)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad check
                log.exception("policy watcher check failed")

    thread = threading.Thread(target=loop, name="site-extender-policy-watcher", daemon=True)
    thread.start()
    return thread
