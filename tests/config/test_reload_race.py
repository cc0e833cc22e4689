"""Reloads race with writes and with requests: the last write always wins, and the verbs never wait
for files being read."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from extender.config import policy_store
from extender.config.policy_store import PolicyStore
from extender.config.reloader import Watcher
from tests.conftest import POLICY_DIR


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    shutil.copytree(POLICY_DIR, tmp_path / "policy", ignore=shutil.ignore_patterns("samples"))
    return tmp_path / "policy"


def set_status(policy_dir: Path, site: str, status: str) -> None:
    path = policy_dir / "inventory" / "sites.json"
    sites = json.loads(path.read_text())
    for entry in sites["sites"]:
        if entry["id"] == site:
            entry["status"] = status
    text = json.dumps(sites)
    path.write_text(text + " " * (len(text) % 7))  # a new size too: the signature moves however fast


def test_a_write_during_a_reload_is_read_by_the_next_check(copied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PolicyStore(copied)
    watcher = Watcher(store)
    real_load = policy_store.load_policy
    writes = iter([lambda: set_status(copied, "site2", "Sellout")])

    def load_then_a_write_lands(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        for write in writes:  # once: the files change after they were read, before the reload ends
            write()
            break
        return loaded

    monkeypatch.setattr(policy_store, "load_policy", load_then_a_write_lands)
    set_status(copied, "site1", "Offline")

    assert watcher.check() is True
    assert store.current().inventory.sites["site1"].status == "Offline"
    assert store.current().inventory.sites["site2"].status != "Sellout"  # written after it was read

    assert watcher.check() is True  # before: None, the write lost until some other file changed
    assert store.current().inventory.sites["site2"].status == "Sellout"
    assert watcher.check() is None


def test_the_verbs_read_the_policy_while_a_reload_reads_files(copied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PolicyStore(copied)
    real_load = policy_store.load_policy
    reading = threading.Event()

    def slow_load(*args, **kwargs):
        reading.set()
        time.sleep(1.0)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(policy_store, "load_policy", slow_load)
    reload = threading.Thread(target=store.reload)
    reload.start()
    assert reading.wait(5)

    started = time.monotonic()
    generation, _ = store.versioned()
    waited = time.monotonic() - started
    reload.join()

    assert waited < 0.5, f"a verb waited {waited:.2f}s for the reload"  # before: the whole second
    assert generation == 1 and store.versioned()[0] == 2
