"""Settings from the environment (`SITE_EXTENDER_*`), with the defaults `make run` relies on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "SITE_EXTENDER_"
DEFAULT_PORT = 8888
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""Room for a full-mode request of 5,000 nodes (about 6 KiB each) with margin."""


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else default


@dataclass(frozen=True, slots=True)
class Settings:
    policy: Path = field(default_factory=lambda: Path(env("POLICY", "policy") or "policy"))
    inventory: Path | None = field(default_factory=lambda: Path(p) if (p := env("INVENTORY")) else None)
    max_body_bytes: int = field(
        default_factory=lambda: int(env("MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)) or DEFAULT_MAX_BODY_BYTES)
    )
