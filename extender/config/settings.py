"""Settings from the environment (`SITE_EXTENDER_*`), with the defaults `make run` relies on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from extender.config.legacy_conf import CONF_FILE, LegacyConf, config_base, load_conf

ENV_PREFIX = "SITE_EXTENDER_"
DEFAULT_PORT = 8888
DEFAULT_DATA_DIR = "data"
"""Relative to the working directory: `./data` for `make run`."""
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""Room for a full-mode request of 5,000 nodes (about 6 KiB each) with margin."""


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else default


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


def listen() -> tuple[str, int]:
    """(host, port) to serve on: SITE_EXTENDER_HOST/PORT, else CONFIG_BASE's conf.yaml, else 0.0.0.0:8888."""
    conf = legacy()
    host = env("HOST") or (conf.address if conf and conf.address else "0.0.0.0")
    port = env("PORT") or (str(conf.port) if conf and conf.port else str(DEFAULT_PORT))
    return host, int(port)


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
    max_body_bytes: int = field(
        default_factory=lambda: int(env("MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)) or DEFAULT_MAX_BODY_BYTES)
    )
