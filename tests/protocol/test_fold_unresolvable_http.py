"""SITE_EXTENDER_FOLD_UNRESOLVABLE: for kube-scheduler before 1.21, which reads FailedNodes only, every
refused site's reason is answered in FailedNodes (under gunicorn, as deploy/legacy runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server import REPO, serve

pytestmark = pytest.mark.process

BODY = (REPO / "policy" / "samples" / "filter-all-sites.json").read_bytes()


def test_unresolvable_reasons_fold_into_failed_nodes(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "folded").mkdir()
    with serve(tmp_path / "plain") as served:
        plain = json.loads(served.post("/filter", BODY).data)
    with serve(tmp_path / "folded", env={"SITE_EXTENDER_FOLD_UNRESOLVABLE": "true"}) as served:
        folded = json.loads(served.post("/filter", BODY).data)
    assert len(plain["FailedAndUnresolvableNodes"]) == 10 and plain["FailedNodes"] == {}
    assert folded == {**plain, "FailedNodes": plain["FailedAndUnresolvableNodes"], "FailedAndUnresolvableNodes": {}}


def test_a_flag_that_is_not_yes_or_no_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extender.config.settings import Settings
    from extender.errors import ConfigError

    monkeypatch.setenv("SITE_EXTENDER_FOLD_UNRESOLVABLE", "maybe")
    with pytest.raises(ConfigError) as raised:
        Settings()
    assert raised.value.problems == ["SITE_EXTENDER_FOLD_UNRESOLVABLE='maybe': expected true or false"]
