"""A bad setting ends the start in one line naming the variable and what it takes, with exit code 2
(invalid input), whether gunicorn is started directly (the image's entrypoint) or by `site-extender serve`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.server import REPO

pytestmark = pytest.mark.process

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:extender.ops.gunicorn_conf"]
SERVE = [sys.executable, "-c", "from extender.cli.commands import main; main()", "serve"]
CASES = [
    ({"SITE_EXTENDER_PORT": "abc"}, "site-extender: SITE_EXTENDER_PORT='abc': must be a whole number from 0 to 65535"),
    ({"SITE_EXTENDER_PORT": "70000"}, "site-extender: SITE_EXTENDER_PORT='70000': must be a whole number from 0 to 65535"),
    ({"SITE_EXTENDER_LOG_LEVEL": "verbose"},
     "site-extender: SITE_EXTENDER_LOG_LEVEL='verbose': unknown log level; one of debug, info, warning, error, critical"),
    ({"SITE_EXTENDER_THREADS": "many"}, "site-extender: SITE_EXTENDER_THREADS='many': must be a whole number of at least 1"),
    ({"SITE_EXTENDER_READ_TIMEOUT": "-1"},
     "site-extender: SITE_EXTENDER_READ_TIMEOUT='-1': must be a number of at least 0"),
    ({"SITE_EXTENDER_EVENT_QPS": "0"}, "site-extender: SITE_EXTENDER_EVENT_QPS='0': must be a number of at least 0.01"),
    ({"SITE_EXTENDER_EVENT_BURST": "lots"},
     "site-extender: SITE_EXTENDER_EVENT_BURST='lots': must be a whole number of at least 1"),
]


@pytest.mark.parametrize("command", [GUNICORN, SERVE], ids=["gunicorn", "serve"])
@pytest.mark.parametrize(("env", "line"), CASES, ids=[next(iter(e)) + "=" + next(iter(e.values())) for e, _ in CASES])
def test_a_bad_setting_is_one_line_and_exit_code_2(command: list[str], env: dict[str, str], line: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SITE_EXTENDER_") and k != "CONFIG_BASE"}
    result = subprocess.run(command, cwd=REPO, env={**clean, "SITE_EXTENDER_KUBE": "none", **env},
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2  # before: 1, which the CLI documents as "the answer is no"
    assert result.stderr.strip().splitlines() == [line]
