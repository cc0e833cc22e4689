"""`site-extender serve --host --port` and `--version`; the first log lines say what was loaded; `make run`
installs the runtime dependencies only."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from extender.cli.commands import main
from tests.server import REPO, serve


def test_version_option() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"site-extender {version('site-extender')}\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "0"], "Invalid value for '--port': 0 is not in the range 1<=x<=65535"),
    (["--port", "http"], "Invalid value for '--port': 'http' is not a valid integer"),
    (["--host", " "], "--host: must not be empty"),
])
def test_serve_refuses_a_bad_address(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.process
def test_serve_listens_where_the_options_say_and_logs_what_it_loaded(tmp_path: Path) -> None:
    with serve(tmp_path, via_cli=True, env={"SITE_EXTENDER_PORT": "1"}) as served:
        assert served.get("/healthz").status == 200
        lines = [json.loads(line) for line in served.log().splitlines() if line.startswith("{")]

    start = next(line for line in lines if line["msg"].startswith("serving policy"))
    assert start["policy"] == str(REPO / "policy" / "policy.yaml")
    assert start["inventory"] == str(REPO / "policy" / "inventory")
    assert (start["sites"], start["regions"], start["cluster_mode"]) == (12, 4, "none")
    assert start["msg"] == (f"serving policy {REPO / 'policy' / 'policy.yaml'} with inventory "
                            f"{REPO / 'policy' / 'inventory'}: 12 sites in 4 regions, cluster mode none")


def test_make_run_installs_the_runtime_dependencies_only(tmp_path: Path) -> None:
    """What `make run` would do in a fresh checkout (make -n: print, do not run)."""
    venv = tmp_path / "venv"
    dry = subprocess.run(["make", "-n", "run", f"VENV={venv}"], cwd=REPO, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")})
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [f"{venv}/bin/python -m pip install --quiet -e ."], dry.stdout
    assert f"{venv}/bin/site-extender serve" in dry.stdout
