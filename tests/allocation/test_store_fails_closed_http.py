"""An allocation store that cannot be read, under gunicorn: not ready, /filter refuses to decide (never
counting zero allocations), the API answers 503 with the reason; a store fixed again is read again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.allocation.test_allocations_http import SAMPLE, vm_args
from tests.server import Served, serve

pytestmark = pytest.mark.process

SITES = ["site1", "site2", "site5"]


def filter_(served: Served) -> dict:
    response = served.post("/filter", json.dumps(vm_args(SITES)))
    assert response.status == 200
    return json.loads(response.data)


def assert_fails_closed(served: Served, why: str) -> None:
    ready = served.get("/readyz")
    assert ready.status == 503
    assert why in json.loads(ready.data)["placements_error"]

    answer = filter_(served)
    assert answer["NodeNames"] is None and answer["Nodes"] is None  # no node passes
    assert answer["Error"].startswith("site-extender cannot decide: allocation store ")
    assert why in answer["Error"]

    for response in (served.get("/v1/allocations"), served.get("/v1/allocations/a1"),
                     served.post("/v1/allocations", json.dumps(SAMPLE)),
                     served.post("/prioritize", json.dumps(vm_args(SITES)))):
        assert response.status == 503, response.data
        assert why in json.loads(response.data)["error"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


def test_a_corrupt_database(tmp_path: Path, data: Path) -> None:
    (data / "allocations.db").write_bytes(b"not sqlite at all " * 512)

    with serve(tmp_path, env={"SITE_EXTENDER_DATA_DIR": str(data)}) as served:
        assert_fails_closed(served, "file is not a database")

        (data / "allocations.db").unlink()  # fixed (here: removed): read again, nothing allocated
        assert served.get("/readyz").status == 200
        assert filter_(served)["NodeNames"] == SITES


def test_a_database_that_breaks_while_serving(tmp_path: Path, data: Path) -> None:
    """Read once, then overwritten under the server: not the placements read before, but no answer."""
    with serve(tmp_path, env={"SITE_EXTENDER_DATA_DIR": str(data)}) as served:
        assert served.post("/v1/allocations", json.dumps(SAMPLE)).status == 201
        assert filter_(served)["Error"] == ""

        for file in data.glob("allocations.db*"):
            file.unlink()
        (data / "allocations.db").write_bytes(b"\0garbage" * 4096)

        assert_fails_closed(served, "file is not a database")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_database(tmp_path: Path, data: Path) -> None:
    database = data / "allocations.db"
    database.write_bytes(b"")
    database.chmod(0)

    with serve(tmp_path, env={"SITE_EXTENDER_DATA_DIR": str(data)}) as served:
        assert_fails_closed(served, "allocation store")
