"""CONFIG_BASE: the original service's conf/ directory starts the service as it is.

The fixture's conf.yaml says `address: 0.0.0.0`, `port: 13443` and names its policy by a path of
another machine (/root/work/src/global-resource-scheduler/conf/edgecloud_policy.yaml): the file of
that name in CONFIG_BASE is used instead. Its inventory has one site, site1 (region1/az1), one host
of 2000 vCPU x 2.0 with 1000 used and 2000 MB with 1000 used, max_count 100; c6.large.2 is 2 vCPU /
2 MB: (4000 - 1000) / 2 = 1500 by vCPU, (2000 - 1000) / 2 = 500 by RAM, 100 by the host's max_count.
Its SAS pool (region1/az1, thin, ratio 1.0) has 2000 GB with 0.3 % reserved and none provisioned
(extender.domain.capacity.pool_ceiling): 2000 x 0.997 = 1994 GB, 49 volumes of 40 GB. So site1 holds
min(100, 49) = 49 replicas of the sample request.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from extender.app import create_app
from extender.config.legacy_conf import load_conf
from extender.config.settings import Settings, listen
from extender.errors import ConfigError
from tests.allocation.test_allocations_http import SAMPLE, sample
from tests.conftest import FIXTURES
from tests.server import REPO, free_port

pytestmark = pytest.mark.process

CONF_DIR = FIXTURES / "global-scheduler-conf"
FALLBACK_LOG = ("conf.yaml: scheduler_policy_file /root/work/src/global-resource-scheduler/conf/edgecloud_policy.yaml"
                " does not exist here; using {base}/edgecloud_policy.yaml (same name, in CONFIG_BASE)")
SITE1_HOLDS = 49


@pytest.fixture
def legacy_env(monkeypatch: pytest.MonkeyPatch):
    for name in ("SITE_EXTENDER_POLICY", "SITE_EXTENDER_INVENTORY", "SITE_EXTENDER_HOST", "SITE_EXTENDER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONFIG_BASE", str(CONF_DIR))
    # The conf.yaml names a cluster (master 0.0.0.0, /root/.kube/config): these tests serve without one.
    monkeypatch.setenv("SITE_EXTENDER_KUBE", "none")
    return monkeypatch


def test_conf_yaml_gives_address_port_policy_and_inventory(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="extender.config.legacy_conf"):
        conf = load_conf(CONF_DIR)
    assert (conf.address, conf.port, conf.policy, conf.inventory, conf.master, conf.kubeconfig) == (
        "0.0.0.0", 13443, CONF_DIR / "edgecloud_policy.yaml", CONF_DIR, "0.0.0.0", "/root/.kube/config")
    assert caplog.messages == [f"{CONF_DIR}/" + FALLBACK_LOG.format(base=CONF_DIR)]


def test_settings_and_listen_follow_config_base(legacy_env) -> None:
    settings = Settings()
    assert (settings.policy, settings.inventory) == (CONF_DIR / "edgecloud_policy.yaml", CONF_DIR)
    assert listen() == ("0.0.0.0", 13443)
    legacy_env.setenv("SITE_EXTENDER_PORT", "9999")  # explicit settings win
    assert listen() == ("0.0.0.0", 9999)


@pytest.mark.parametrize("conf, problem", [
    ("port: 70000\n", "port must be in 1..65535, got 70000 - at `$.port`"),
    ("port: [1]\n", "Expected `int | null`, got `array` - at `$.port`"),
    ("scheduler_policy_file: /elsewhere/nope.yaml\n",
     "scheduler_policy_file /elsewhere/nope.yaml not found, nor nope.yaml in {base} - at `$.scheduler_policy_file`"),
], ids=["port-range", "port-type", "policy-missing"])
def test_a_bad_conf_yaml_names_the_field(tmp_path: Path, conf: str, problem: str) -> None:
    (tmp_path / "conf.yaml").write_text(conf)
    with pytest.raises(ConfigError) as raised:
        load_conf(tmp_path)
    assert raised.value.problems == [f"{tmp_path / 'conf.yaml'}: " + problem.format(base=tmp_path)]


def test_the_sample_request_against_the_conf_directory(legacy_env, tmp_path: Path) -> None:
    api = create_app({"SETTINGS": Settings(data_dir=tmp_path), "TESTING": True}).test_client()
    answer = api.post("/v1/allocations", json=SAMPLE)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["allocation"]["resource_groups"] == [{
        "name": "RTC", "resources": [{"name": "rtc-name", "flavor_id": "c6.large.2", "count": 1}],
        "selected": {"node_id": "site1", "region": "region1", "availability_zone": "az1",
                     "site_id": "site1", "cluster_name": "site1"},
    }]
    # 1 taken, 48 left: 49 more do not fit, 48 do
    refused = api.post("/v1/allocations", json=sample(replicas=SITE1_HOLDS))
    assert refused.status_code == 409
    assert refused.get_json()["error"] == f"nothing allocated: {SITE1_HOLDS} replica(s) of RTC asked, the sites can hold {SITE1_HOLDS - 1}"
    assert api.post("/v1/allocations", json=sample(replicas=SITE1_HOLDS - 1)).status_code == 201


def test_serve_starts_on_the_conf_address_and_port(tmp_path: Path) -> None:
    base = tmp_path / "conf"
    shutil.copytree(CONF_DIR, base)
    port = free_port()
    conf = (base / "conf.yaml").read_text().replace("address: 0.0.0.0", "address: 127.0.0.1")
    (base / "conf.yaml").write_text(conf.replace("port: 13443", f"port: {port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITE_EXTENDER_")}
    env.update(CONFIG_BASE=str(base), SITE_EXTENDER_DATA_DIR=str(tmp_path / "data"), SITE_EXTENDER_KUBE="none")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "extender.cli", "serve"], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(total=10), retries=False)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            try:
                http.request("GET", url + "/healthz")
                break
            except urllib3.exceptions.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        answer = http.request("POST", url + "/v1/allocations", body=json.dumps(SAMPLE),
                              headers={"Content-Type": "application/json"})
        assert answer.status == 201
        assert json.loads(answer.data)["allocation"]["resource_groups"][0]["selected"]["node_id"] == "site1"
    finally:
        process.terminate()
        process.wait(timeout=15)
        http.clear()
    assert FALLBACK_LOG.format(base=base) in log.read_text()
