"""CONFIG_BASE's conf.yaml `master` and `kubeconfig` name the cluster, as the original read them; a
kubeconfig that is not there stops the start instead of serving without a cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from extender.app import create_app
from extender.config.settings import Settings
from tests.allocation.test_allocations_http import SAMPLE
from tests.conftest import FIXTURES
from tests.server import REPO

pytestmark = pytest.mark.process

CONF_DIR = FIXTURES / "global-scheduler-conf"


def conf_dir(tmp_path: Path, **keys: str) -> Path:
    """The fixture's conf/ with conf.yaml's `keys` replaced."""
    base = tmp_path / "conf"
    shutil.copytree(CONF_DIR, base)
    conf = yaml.safe_load((base / "conf.yaml").read_text())
    conf.update(keys)
    (base / "conf.yaml").write_text(yaml.safe_dump(conf))
    return base


def clean_env(base: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SITE_EXTENDER_") and k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env.update(CONFIG_BASE=str(base), SITE_EXTENDER_DATA_DIR=str(tmp_path / "data"))
    return env


def test_serve_refuses_a_conf_kubeconfig_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config"
    base = conf_dir(tmp_path, kubeconfig=str(missing), port=1)
    done = subprocess.run([sys.executable, "-m", "extender.cli", "serve"], cwd=REPO, env=clean_env(base, tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"site-extender: cannot start: cannot load cluster access (kubeconfig {missing} master 0.0.0.0"
        " (from CONFIG_BASE conf.yaml)): no such file")


@pytest.mark.parametrize("how", ["kubeconfig", "master-over-a-wrong-server"])
def test_the_conf_cluster_is_watched(k8s, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    kubeconfig = yaml.safe_load(k8s.kubeconfig.read_text())
    master = None
    if how == "master-over-a-wrong-server":
        master = k8s.url.removeprefix("https://")  # bare host:port: https because the kubeconfig has a CA
        kubeconfig["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    base = conf_dir(tmp_path, kubeconfig=str(path), **({"master": master} if master else {"master": ""}))
    for name in [k for k in os.environ if k.startswith("SITE_EXTENDER_")] + ["KUBECONFIG", "KUBERNETES_SERVICE_HOST"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONFIG_BASE", str(base))
    app = create_app({"SETTINGS": Settings(data_dir=tmp_path / "data"), "TESTING": True})
    api = app.test_client()
    deadline = time.monotonic() + 20
    while (ready := api.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, ready.get_json()
        time.sleep(0.1)
    cluster = ready.get_json()["cluster"]
    assert cluster["mode"] == "kubernetes" and cluster["synced"] is True
    assert api.post("/v1/allocations", json=SAMPLE).status_code == 201
    app.extensions["site_extender"].cluster.close()
