"""gunicorn settings of the extender, overridable from the environment (`SITE_EXTENDER_*`).

One worker process with threads: the reservations and the node/pod cache live in that process, so
every request sees the same state (docs/architecture.md, "Where the state lives").
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from extender.config.settings import Settings, SettingsError, env, env_number, listen, log_level
from extender.ops import logs, tls
from extender.ops.limits import read_timeout

try:
    # A bad setting ends the start with one line and exit code 2 (invalid input), never a traceback
    # from gunicorn's internals with exit code 1.
    _host, _port = listen()
    workers = env_number("WORKERS", 1)
    threads = env_number("THREADS", 8)
    # A worker whose main loop stops for this long is killed and replaced: shorter than the scheduler's
    # httpTimeout (10 s in deploy/; set it lower with the scheduler's default of 5 s), so a hung worker is
    # gone before the calls waiting on it pile up. It also bounds the worker's boot.
    timeout = env_number("WORKER_TIMEOUT", 8)
    # SIGTERM: stop accepting, finish the requests in flight for up to this long (< terminationGracePeriodSeconds).
    graceful_timeout = env_number("GRACEFUL_TIMEOUT", 10, minimum=0)
    keepalive = env_number("KEEPALIVE", 30, minimum=0)
    loglevel = log_level()
    read_timeout()
    Settings()  # the app's own settings, read again by each worker
except SettingsError as _exc:
    sys.stderr.write(f"site-extender: {_exc}\n")
    sys.exit(2)
bind = [f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"]
if _api_port := env("API_PORT"):  # the allocation API's own port (extender.allocation.access)
    bind.append(f"[{_host}]:{_api_port}" if ":" in _host else f"{_host}:{_api_port}")
# gthread with a deadline per request and no thread for a quiet connection (extender/ops/worker.py):
# 30 idle and 4 trickling connections leave a /filter from the scheduler unaffected.
worker_class = "extender.ops.worker.DeadlineThreadWorker"
accesslog = env("ACCESS_LOG", "-")
errorlog = "-"
logconfig_dict = logs.gunicorn_logconfig()
wsgi_app = "extender.app:create_app()"
# gunicorn >= 24 opens a control socket under $HOME: not wanted with a read-only root filesystem.
control_socket_disable = True
# The worker heartbeat file (default: the system temp dir). deploy/ points it at the memory-backed /tmp
# emptyDir: on a disk-backed directory the heartbeat's fchmod can block the worker.
worker_tmp_dir = env("WORKER_TMP_DIR")


# TLS (SITE_EXTENDER_TLS_CERT/_KEY, client certificates with _CLIENT_CA): checked here, so that a bad
# configuration stops the start; each new connection then gets the current context (reloaded when
# cert-manager rotates the files).
_tls_files = tls.TLSFiles.from_env()
if _tls_files is not None:
    tls.build_context(_tls_files)
    certfile, keyfile = str(_tls_files.cert), str(_tls_files.key)
    ssl_context = tls.gunicorn_ssl_context


# Metrics of several workers (prometheus-client multiprocess mode): a fresh directory per start,
# set before the workers fork (they import prometheus_client after), dead workers' gauges removed.
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created_metrics_dir: str | None = None


def on_starting(server: object) -> None:
    global _created_metrics_dir
    given = os.environ.get(_METRICS_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        _created_metrics_dir = tempfile.mkdtemp(prefix="site-extender-metrics-", dir=worker_tmp_dir)
        os.environ[_METRICS_ENV] = _created_metrics_dir


def post_worker_init(worker: object) -> None:
    """Start the policy watcher of this worker (reloads on ConfigMap changes, refreshes the live
    gauges). Start-up built the policy, the inventory and its indexes: they live as long as the
    worker. `gc.freeze()` takes them out of the collector's sight, so that full collections during
    requests do not walk them again and again (shorter pauses, lower p99). A /filter over thousands of
    nodes makes tens of thousands of short-lived objects (a reason per failing node): with the
    default threshold of 700 allocations that is dozens of young collections per call; at 20,000 it
    is one or two, and a full collection comes every ~20 million allocations instead of ~700,000."""
    import gc

    from extender.config import reloader

    reloader.start(worker.wsgi)  # type: ignore[attr-defined]
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    if _created_metrics_dir:
        shutil.rmtree(_created_metrics_dir, ignore_errors=True)
