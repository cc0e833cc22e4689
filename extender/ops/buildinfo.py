"""What `GET /version` answers: the fields of the original's `ProdInfo` (version, commit id, build date,
the runtime's version), named as it named them, beside this service's name.

The image records its commit and build date at build time (`docker build --build-arg COMMIT_ID=...
--build-arg BUILD_DATE=...`, as `SITE_EXTENDER_COMMIT_ID` and `SITE_EXTENDER_BUILD_DATE`); run from a git
checkout, the commit is read from `.git` (no `git` process); what is not known says `unknown`.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

NAME = "site-extender"
UNKNOWN = "unknown"
ENV_COMMIT_ID = "SITE_EXTENDER_COMMIT_ID"
ENV_BUILD_DATE = "SITE_EXTENDER_BUILD_DATE"
SOURCE = Path(__file__).resolve().parent.parent.parent
"""The directory above the package: a git checkout when run from source."""


def info() -> dict[str, str]:
    return {
        "name": NAME,
        "version": _version(),
        "commit_id": os.environ.get(ENV_COMMIT_ID) or checkout_commit(SOURCE) or UNKNOWN,
        "build_date": os.environ.get(ENV_BUILD_DATE) or UNKNOWN,
        "python_version": f"{platform.python_implementation()} {platform.python_version()}",
    }


@lru_cache(maxsize=1)
def _version() -> str:
    try:
        return version(NAME)
    except PackageNotFoundError:
        return UNKNOWN


@lru_cache(maxsize=4)
def checkout_commit(source: Path) -> str | None:
    """The commit checked out at `source` (a repository or a `git worktree`), or None."""
    try:
        git = source / ".git"
        if git.is_file():  # a worktree: "gitdir: <its directory under the main repository>"
            git = Path(git.read_text().removeprefix("gitdir:").strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None  # detached
        ref = head.removeprefix("ref:").strip()
        common = git / (git / "commondir").read_text().strip() if (git / "commondir").is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        for line in (common / "packed-refs").read_text().splitlines():
            commit, _, name = line.partition(" ")
            if name == ref:
                return commit
    except OSError:
        return None
    return None
