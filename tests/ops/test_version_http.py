"""GET /version answers the original's ProdInfo fields (version, commit_id, build_date and the runtime's
version) beside the name, under gunicorn as deployed."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import pytest

from extender.ops.buildinfo import checkout_commit
from tests.server import REPO, serve

pytestmark = pytest.mark.process

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_the_image_build_args_are_answered(tmp_path: Path) -> None:
    env = {"SITE_EXTENDER_COMMIT_ID": COMMIT, "SITE_EXTENDER_BUILD_DATE": "2026-12-01T10:00:00Z"}
    with serve(tmp_path, env=env) as served:
        answer = json.loads(served.get("/version").data)
    assert answer == {"name": "site-extender", "version": answer["version"], "commit_id": COMMIT,
                      "build_date": "2026-12-01T10:00:00Z",
                      "python_version": f"{platform.python_implementation()} {platform.python_version()}"}
    assert answer["version"][0].isdigit()


def test_from_a_checkout_the_commit_is_the_checked_out_one(tmp_path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    expected = head.stdout.strip() if head.returncode == 0 else "unknown"
    env = {"SITE_EXTENDER_COMMIT_ID": "", "SITE_EXTENDER_BUILD_DATE": ""}
    with serve(tmp_path, env=env) as served:
        answer = json.loads(served.get("/version").data)
    assert (answer["commit_id"], answer["build_date"]) == (expected, "unknown")


@pytest.mark.parametrize("layout", ["loose-ref", "packed-ref", "detached", "worktree", "none"])
def test_checkout_commit_reads_git_without_git(tmp_path: Path, layout: str) -> None:
    source = tmp_path / "src"
    git = source / ".git"
    git.mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    if layout == "loose-ref":
        (git / "refs" / "heads").mkdir(parents=True)
        (git / "refs" / "heads" / "main").write_text(COMMIT + "\n")
    elif layout == "packed-ref":
        (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{'f' * 40} refs/heads/other\n{COMMIT} refs/heads/main\n")
    elif layout == "detached":
        (git / "HEAD").write_text(COMMIT + "\n")
    elif layout == "worktree":
        own = git / "worktrees" / "wt"
        own.mkdir(parents=True)
        (own / "HEAD").write_text("ref: refs/heads/wt\n")
        (own / "commondir").write_text("../..\n")
        (git / "refs" / "heads").mkdir(parents=True)
        (git / "refs" / "heads" / "wt").write_text(COMMIT + "\n")
        worktree = tmp_path / "wt"
        worktree.mkdir()
        (worktree / ".git").write_text(f"gitdir: {own}\n")
        source = worktree
    else:
        (git / "HEAD").unlink()
    assert checkout_commit(source) == (None if layout == "none" else COMMIT)
