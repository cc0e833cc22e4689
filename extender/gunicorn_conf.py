"""gunicorn settings of the extender, overridable from the environment (`SITE_EXTENDER_*`).

One worker process with threads: the reservations and the node/pod cache live in that process, so
every request sees the same state (see README, "State and workers").
"""

from __future__ import annotations

from extender.settings import env, listen

_host, _port = listen()
bind = [f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"]
workers = int(env("WORKERS", "1") or 1)
worker_class = "gthread"
threads = int(env("THREADS", "4") or 4)
timeout = int(env("WORKER_TIMEOUT", "30") or 30)
graceful_timeout = int(env("GRACEFUL_TIMEOUT", "10") or 10)
keepalive = int(env("KEEPALIVE", "30") or 30)
accesslog = env("ACCESS_LOG", "-")
errorlog = "-"
loglevel = (env("LOG_LEVEL", "info") or "info").lower()
wsgi_app = "extender.app:create_app()"
# gunicorn >= 24 opens a control socket under $HOME: not wanted with a read-only root filesystem.
control_socket_disable = True
# The worker heartbeat file (default: the system temp dir). deploy/ points it at the memory-backed /tmp
# emptyDir: on a disk-backed directory the heartbeat's fchmod can block the worker.
worker_tmp_dir = env("WORKER_TMP_DIR")


def post_fork(server, worker):  # noqa: ANN001 - gunicorn's hook signature
    """The package's own log lines (`extender.*`: cluster mode at start-up, watch errors, failed
    bindings) go where gunicorn's error log goes, at its level; without this they would be dropped."""
    import logging

    source = logging.getLogger("gunicorn.error")
    target = logging.getLogger("extender")
    for handler in source.handlers:
        target.addHandler(handler)
    target.setLevel(source.level)
    target.propagate = False


def post_worker_init(worker: object) -> None:
    """Start-up built the policy, the inventory and its indexes: they live as long as the worker.
    `gc.freeze()` takes them out of the collector's sight, so that full collections during requests
    do not walk them again and again (shorter pauses, lower p99)."""
    import gc

    gc.freeze()
