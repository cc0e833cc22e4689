"""Settings from the environment (`SITE_EXTENDER_*`), with the defaults `make run` relies on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from extender.config.legacy_conf import CONF_FILE, LegacyConf, config_base, load_conf
from extender.errors import ConfigError, ExtenderError

ENV_PREFIX = "SITE_EXTENDER_"
DEFAULT_PORT = 8888
DEFAULT_DATA_DIR = "data"
"""Relative to the working directory: `./data` for `make run`."""
STATE_FILES, STATE_CLUSTER = "files", "cluster"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""Room for a full-mode request of 5,000 nodes (about 6 KiB each) with margin."""


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else default


def flag(name: str) -> bool:
    """A yes/no variable: true/false (also 1/0, yes/no); unset or empty is false; anything else stops the start."""
    value = (env(name) or "false").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ConfigError([f"{ENV_PREFIX}{name}={value!r}: expected true or false"])


def legacy() -> LegacyConf | None:
    """The original service's configuration when `CONFIG_BASE` is set (see `legacy_conf`); read
    once per version of the file, so its log lines come once."""
    base = config_base()
    if base is None:
        return None
    try:
        stat = (base / CONF_FILE).stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    return _load_conf(str(base), version)


@lru_cache(maxsize=8)
def _load_conf(base: str, version: tuple[int, int] | None) -> LegacyConf:
    return load_conf(base)


def _policy() -> Path:
    if named := env("POLICY"):
        return Path(named)
    conf = legacy()
    return conf.policy if conf else Path("policy")


def _inventory() -> Path | None:
    if named := env("INVENTORY"):
        return Path(named)
    conf = legacy()
    return conf.inventory if conf else None


class SettingsError(ExtenderError):
    """A setting that cannot be used: one line naming the variable, the value and what it takes."""


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def env_number(name: str, default: float, kind: type[int] | type[float] = int, minimum: float = 1,
               maximum: float | None = None) -> Any:
    """SITE_EXTENDER_<name> as `kind`, within bounds, or `SettingsError` saying what it takes."""
    raw = env(name)
    if raw is None:
        return kind(default)
    what = "a whole number" if kind is int else "a number"
    bounds = f" from {minimum:g} to {maximum:g}" if maximum is not None else f" of at least {minimum:g}"
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or value != value or value < minimum or (maximum is not None and value > maximum):
        raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: must be {what}{bounds}")
    return value


def log_level() -> str:
    """SITE_EXTENDER_LOG_LEVEL, lower case, one of `LOG_LEVELS`."""
    raw = env("LOG_LEVEL", "info") or "info"
    if raw.strip().lower() not in LOG_LEVELS:
        raise SettingsError(f"{ENV_PREFIX}LOG_LEVEL={raw!r}: unknown log level; one of {', '.join(LOG_LEVELS)}")
    return raw.strip().lower()


def listen() -> tuple[str, int]:
    """(host, port) to serve on: SITE_EXTENDER_HOST/PORT, else CONFIG_BASE's conf.yaml, else 0.0.0.0:8888."""
    conf = legacy()
    host = env("HOST") or (conf.address if conf and conf.address else "0.0.0.0")
    if env("PORT") is not None:
        return host, env_number("PORT", DEFAULT_PORT, int, 0, 65535)  # 0: any free port
    return host, int(conf.port) if conf and conf.port else DEFAULT_PORT


@dataclass(frozen=True, slots=True)
class Settings:
    policy: Path = field(default_factory=_policy)
    """SITE_EXTENDER_POLICY, else CONFIG_BASE's scheduler_policy_file, else ./policy."""
    inventory: Path | None = field(default_factory=_inventory)
    """SITE_EXTENDER_INVENTORY, else CONFIG_BASE, else the policy's `options.inventory`."""
    data_dir: Path = field(default_factory=lambda: Path(env("DATA_DIR", DEFAULT_DATA_DIR) or DEFAULT_DATA_DIR))
    """Where the allocations store lives (`allocations.db`); created on the first allocation."""
    kube: str = field(default_factory=lambda: env("KUBE", "auto") or "auto")
    """SITE_EXTENDER_KUBE: auto, none, in-cluster or kubeconfig (see `extender.kube.config`)."""
    state: str = field(default_factory=lambda: (env("STATE", STATE_FILES) or STATE_FILES).strip().lower())
    """SITE_EXTENDER_STATE: `files` (the inventory files, allocations in SQLite) or `cluster` (the
    site-extender.io custom resources of the cluster; see docs/cluster-state.md)."""
    api_port: int | None = field(default_factory=lambda: int(env("API_PORT")) if env("API_PORT") else None)
    """SITE_EXTENDER_API_PORT: serve the allocation API on this port alone (and nothing else there)."""
    namespace: str = field(default_factory=lambda: env("NAMESPACE") or os.environ.get("POD_NAMESPACE") or "site-extender")
    """The extender's own namespace (its election Lease, its Allocations): SITE_EXTENDER_NAMESPACE, else
    POD_NAMESPACE (the Deployment sets it), else site-extender."""
    site_nodes: bool = field(default_factory=lambda: (env("SITE_NODES", "true") or "true").lower() in ("1", "true", "yes"))
    """SITE_EXTENDER_SITE_NODES: with the state in the cluster, keep one Node per site (the elected replica)."""
    site_node_heartbeat: float = field(default_factory=lambda: float(env("SITE_NODE_HEARTBEAT", "10") or 10))
    """Seconds between renewals of each site node's Lease (kubelet renews every 10 s)."""
    leader_lease_seconds: int = field(default_factory=lambda: int(env("LEADER_LEASE_SECONDS", "15") or 15))
    """leaseDurationSeconds of the election Lease: how long a dead leader's term lasts at most."""
    kubeconfig: str | None = field(default_factory=lambda: (conf := legacy()) and conf.kubeconfig or None)
    """CONFIG_BASE's conf.yaml `kubeconfig` (the cluster, unless SITE_EXTENDER_KUBE/KUBECONFIG say otherwise)."""
    master: str | None = field(default_factory=lambda: (conf := legacy()) and conf.master or None)
    """CONFIG_BASE's conf.yaml `master`: the API server, in place of the kubeconfig's server."""
    fold_unresolvable: bool = field(default_factory=lambda: flag("FOLD_UNRESOLVABLE"))
    """SITE_EXTENDER_FOLD_UNRESOLVABLE: answer unresolvable failures in FailedNodes as well (kube-scheduler < 1.21)."""
    max_body_bytes: int = field(
        default_factory=lambda: env_number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
    )
    event_qps: float = field(default_factory=lambda: env_number("EVENT_QPS", 5, float, minimum=0.01))
    """SITE_EXTENDER_EVENT_QPS / _EVENT_BURST: the pace of Event writes (client-go's client defaults)."""
    event_burst: int = field(default_factory=lambda: env_number("EVENT_BURST", 10))
