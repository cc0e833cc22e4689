"""Allocations under gunicorn: kept across a restart, never over-allocated by concurrent requests.

site2 of the sample inventory holds 2 replicas of the sample request (100 GB of SAS, 40 each; see
test_allocations_http.py), which makes it the place to see stock run out.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.server import serve
from tests.test_allocations_http import on_site, vm_args

SITE2_HOLDS = 2


def post(served, body: dict):
    return served.post("/v1/allocations", json.dumps(body))


def test_a_restart_keeps_allocations_and_the_stock_they_use(tmp_path: Path) -> None:
    env = {"SITE_EXTENDER_DATA_DIR": str(tmp_path / "data")}
    with serve(tmp_path, env=env) as served:
        made = post(served, on_site("site2", replicas=SITE2_HOLDS))
        assert made.status == 201, made.data
        first = json.loads(made.data)
        allocation_id = first["allocation"]["id"]

    assert (tmp_path / "data" / "allocations.db").is_file()
    with serve(tmp_path, env=env) as served:
        shown = served.get(f"/v1/allocations/{allocation_id}")
        assert shown.status == 200 and json.loads(shown.data) == first
        refused = post(served, on_site("site2"))
        assert refused.status == 409  # the stock is still taken: not lost, and ...
        filtered = json.loads(served.post("/filter", json.dumps(vm_args(["site2"]))).data)
        assert filtered["NodeNames"] == []
        assert filtered["FailedNodes"]["site2"].startswith("Volume: SAS has 20 GB left")  # ... not counted twice
        assert served.http.request("DELETE", f"{served.url}/v1/allocations/{allocation_id}").status == 204

    with serve(tmp_path, env=env) as served:
        assert served.get(f"/v1/allocations/{allocation_id}").status == 404
        assert post(served, on_site("site2")).status == 201


def test_concurrent_requests_never_take_more_than_the_site_holds(tmp_path: Path) -> None:
    env = {"SITE_EXTENDER_DATA_DIR": str(tmp_path / "data"), "SITE_EXTENDER_THREADS": "8"}
    with serve(tmp_path, env=env) as served:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(lambda _: post(served, on_site("site2")).status, range(8)))
        assert statuses == [201] * SITE2_HOLDS + [409] * (8 - SITE2_HOLDS)
        listed = json.loads(served.get("/v1/allocations").data)["allocations"]
        assert len(listed) == SITE2_HOLDS
