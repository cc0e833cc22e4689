from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from extender.app import create_app
from extender.config.settings import Settings
from tests.control_plane import ControlPlane, control_plane, find_binaries
from tests.server import REPO, Served, serve

FIXTURES = REPO / "tests" / "fixtures"  # recorded from a real control plane: see tests/fixtures/README.md
SCHEDULER_FIXTURES = FIXTURES / "scheduler"
POLICY_DIR = REPO / "policy"


def load_fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text())


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The extender under gunicorn with the default policy and the sample inventory."""
    with serve(tmp_path_factory.mktemp("server")) as served:
        yield served


@pytest.fixture(scope="session")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A real etcd + kube-apiserver (v1.36, RBAC on) for the whole session; skips without the binaries.
    Tests share it: each works in namespaces and objects of its own."""
    binaries, why = find_binaries()
    if binaries is None:
        pytest.skip(why)
    with control_plane(binaries, tmp_path_factory.mktemp("k8s")) as plane:
        yield plane


@pytest.fixture
def app():
    return create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="none"), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


__all__ = ["Path", "load_fixture"]
