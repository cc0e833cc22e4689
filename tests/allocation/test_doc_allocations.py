"""docs/allocation-api.md and docs/cli.md: every curl and `site-extender` example, run in order against a
fresh server and data directory, gives exactly what it shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import REPO, serve

pytestmark = pytest.mark.process

CURL = re.compile(r"```sh\n(curl [^\n]*)\n```\n```(?:json)?\n(.*?)\n```", re.S)
CONSOLE = re.compile(r"```console\n(.*?)\n```", re.S)


def console_examples(text: str) -> list[tuple[str, str]]:
    """(command, output) pairs of the console blocks: a `$ ` line, then its output."""
    found = []
    for block in CONSOLE.findall(text):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            found.append((command, output))
    return found


def test_doc_allocation_and_cli_examples(tmp_path: Path) -> None:
    curls = CURL.findall((REPO / "docs" / "allocation-api.md").read_text())
    consoles = console_examples((REPO / "docs" / "cli.md").read_text())
    assert len(curls) >= 4 and len(consoles) >= 4, "docs/allocation-api.md or docs/cli.md lost its examples"

    data = tmp_path / "data"
    env = {"SITE_EXTENDER_DATA_DIR": str(data)}
    with serve(tmp_path, env=env) as served:
        for command, answer in curls:
            args = [a.replace("localhost:8888", served.url) for a in shlex.split(command)]
            got = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True).stdout
            assert got.removesuffix("\n") == answer, command

    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("SITE_EXTENDER_") and k != "CONFIG_BASE"}
    cli_env.update(env)
    for command, output in consoles:
        args = shlex.split(command)
        assert args[0] == "site-extender"
        got = subprocess.run([sys.executable, "-m", "extender.cli", *args[1:]], cwd=REPO, env=cli_env,
                             capture_output=True, text=True)
        assert got.returncode == 0, got.stderr
        assert got.stdout.removesuffix("\n") == output.removesuffix("\n"), command
