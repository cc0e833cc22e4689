"""`site-extender stock`: the same numbers as GET /v1/sites, worked out locally or asked of a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.server import REPO, serve

RTC = REPO / "policy" / "samples" / "allocations" / "rtc.json"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "SITE_EXTENDER_POLICY": str(REPO / "policy"), "SITE_EXTENDER_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "extender.cli", *args], cwd=REPO, env=env, capture_output=True, text=True)


def test_stock_table_counts_the_allocations_of_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("allocate", "--id", "rtc-1", str(RTC), data_dir=data).returncode == 0

    table = run("stock", data_dir=data)
    site = run("stock", "site2", data_dir=data)

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["SITE", "STATUS", "REGION/ZONE", "FLAVOR", "TOTAL", "PLACED", "LEFT", "EIP", "LEFT", "VMS"]
    assert next(line for line in lines if line.startswith("site2")).split() == [
        "site2", "active", "region1/az2", "c6.large.2", "3", "1", "2", "219", "1"]
    assert site.stdout.splitlines()[-2:] == ["KIND        NAME   FLAVOR      EIP  STORAGE",
                                            "allocation  rtc-1  c6.large.2  no   SAS 40 GB"]


def test_stock_of_an_unknown_site_exits_1(tmp_path: Path) -> None:
    result = run("stock", "site99", data_dir=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "site-extender: no site 'site99' in the inventory\n"


@pytest.mark.process
def test_stock_from_a_server_is_its_answer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(tmp_path, env={"SITE_EXTENDER_DATA_DIR": str(data)}) as served:
        served.http.request("PUT", served.url + "/v1/allocations/rtc-1", body=RTC.read_bytes(),
                            headers={"Content-Type": "application/json"})
        answer = json.loads(served.get("/v1/sites").data)
        remote = run("stock", "--server", served.url, "-o", "json", data_dir=tmp_path / "elsewhere")
        remote_yaml = run("stock", "site2", "--server", served.url, "-o", "yaml", data_dir=tmp_path / "elsewhere")
        local = run("stock", "-o", "json", data_dir=data)

    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == answer == json.loads(local.stdout)
    assert yaml.safe_load(remote_yaml.stdout)["placements"][0]["name"] == "rtc-1"


def test_stock_says_when_the_server_cannot_be_reached(tmp_path: Path) -> None:
    result = run("stock", "--server", "http://127.0.0.1:9", data_dir=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("site-extender: cannot reach http://127.0.0.1:9/v1/sites: ")
    bad = run("stock", "--server", "localhost:8888", data_dir=tmp_path)
    assert bad.stderr == "site-extender: --server 'localhost:8888': expected a URL such as http://localhost:8888\n"
