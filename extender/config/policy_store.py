"""Holds the policy in force. A reload that fails validation keeps the last good policy."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from extender.config.policy import Policy, load_policy
from extender.errors import ConfigError

log = logging.getLogger(__name__)


class PolicyStore:
    """The current policy, loaded at start (errors stop the start) and reloadable."""

    def __init__(self, path: str | Path, inventory_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.inventory_dir = Path(inventory_dir) if inventory_dir else None
        self._lock = threading.Lock()
        self._policy = load_policy(self.path, self.inventory_dir)
        self.generation = 1
        """Counts successful loads; keys anything derived from the policy (snapshots)."""
        self.loaded_at = time.time()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.reloads = 0
        """Reloads tried since start (successful or not)."""
        self.reload_errors = 0

    def current(self) -> Policy:
        return self._policy

    def versioned(self) -> tuple[int, Policy]:
        """(generation, policy), read together."""
        with self._lock:
            return self.generation, self._policy

    def reload(self) -> bool:
        """Load the policy again; on failure keep the one in force and remember why. True if replaced."""
        with self._lock:
            self.reloads += 1
            try:
                policy = load_policy(self.path, self.inventory_dir)
            except Exception as exc:  # noqa: BLE001 - whatever breaks a reload, the good policy stays
                if not isinstance(exc, ConfigError):
                    exc = ConfigError([f"{self.path}: cannot be loaded: {type(exc).__name__}: {exc}"])
                self.last_error = str(exc)
                self.last_error_at = time.time()
                self.reload_errors += 1
                log.error("policy reload failed, keeping the last good policy: %s", exc,
                          extra={"generation": self.generation, "problems": exc.problems})
                return False
            self._policy = policy
            self.generation += 1
            self.loaded_at = time.time()
            self.last_error = None
            self.last_error_at = None
            log.info("policy reloaded", extra={"generation": self.generation, "sites": len(policy.inventory.sites)})
            return True

    def status(self) -> dict[str, object]:
        policy = self._policy
        return {
            "path": str(policy.path),
            "inventory": str(policy.options.inventory_dir),
            "sites": len(policy.inventory.sites),
            "loaded_at": self.loaded_at,
            "generation": self.generation,
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "last_reload_error": self.last_error,
            "last_reload_error_at": self.last_error_at,
        }
