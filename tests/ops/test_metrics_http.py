"""/metrics counts what happened, added up over several gunicorn workers and across worker restarts."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import SCHEDULER_FIXTURES
from tests.metrics_support import scrape, value
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

FILTER_BODY = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()  # site3 fails RegionAndAZ
PRIORITIZE_BODY = (REPO / "policy" / "samples" / "prioritize-cache.json").read_bytes()


def workers(served: Served) -> list[int]:
    pid = served.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for_workers(served: Served, count: int, old: set[int]) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = workers(served)
        if len(now) == count and not set(now) & old and served.get("/healthz").status == 200:
            return now
        time.sleep(0.05)
    raise AssertionError(f"workers not replaced: {workers(served)}")


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("metrics")
    metrics_dir = directory / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale junk of an earlier run")
    env = {"SITE_EXTENDER_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with serve(directory, env=env) as served:
        served.metrics_dir = metrics_dir  # type: ignore[attr-defined]
        yield served


def test_metrics_count_requests_outcomes_and_nodes_over_workers_and_restarts(two_workers: Served) -> None:
    served = two_workers
    for _ in range(3):
        assert served.post("/filter", FILTER_BODY).status == 200
    for _ in range(2):
        assert served.post("/prioritize", PRIORITIZE_BODY).status == 200
    assert served.post("/filter", b"{not json").status == 400
    assert served.post("/filter", FILTER_BODY, content_type="text/plain").status == 415
    assert served.http.request("GET", served.url + "/filter", retries=False).status == 405
    served.http.clear()

    # Both workers die (as on a crash) and are replaced: what they counted must stay.
    old = workers(served)
    assert len(old) == 2
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    wait_for_workers(served, 2, set(old))
    deadline = time.monotonic() + 10  # each new worker reads its live state once before it serves
    while value(scrape(served), "site_extender_cache_synced") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)

    for _ in range(4):  # whichever worker answers the scrape, the sums are the same
        samples = scrape(served)
        assert value(samples, "site_extender_requests_total", verb="filter", outcome="ok") == 3
        assert value(samples, "site_extender_requests_total", verb="prioritize", outcome="ok") == 2
        assert value(samples, "site_extender_requests_total", verb="filter", outcome="rejected") == 3
        assert value(samples, "site_extender_request_duration_seconds_count", verb="filter", outcome="ok") == 3
        assert value(samples, "site_extender_filter_nodes_passed_total") == 6
        assert value(samples, "site_extender_filter_nodes_failed_total",
                     predicate="RegionAndAZ", unresolvable="true") == 3
        assert value(samples, "site_extender_cache_synced") == 1
        assert value(samples, "site_extender_policy_last_reload_success") == 1
        assert value(samples, "site_extender_reservations") == 0
        assert value(samples, "site_extender_events_queued") == 0
        assert value(samples, "site_extender_events_dropped") == 0
    # child_exit marked the dead workers: no live gauge of theirs is left to skew min/max/sum.
    live = [p.name for p in served.metrics_dir.glob("gauge_live*.db")]  # type: ignore[attr-defined]
    assert live and not [name for name in live if any(name.endswith(f"_{pid}.db") for pid in old)]


def test_invalid_vm_request_is_counted_under_its_own_label(two_workers: Served) -> None:
    args = json.loads((SCHEDULER_FIXTURES / "cache-mode" / "filter-0005.json").read_text())
    args["Pod"]["metadata"]["annotations"]["site-extender.io/vm"] = '{"flavors": "c6.large.2"}'
    before = value(scrape(two_workers), "site_extender_filter_nodes_failed_total",
                   predicate="InvalidVMRequest", unresolvable="true")

    assert two_workers.post("/filter", json.dumps(args)).status == 200

    after = value(scrape(two_workers), "site_extender_filter_nodes_failed_total",
                  predicate="InvalidVMRequest", unresolvable="true")
    assert after - before == len(args["NodeNames"])


def test_metrics_of_the_flask_app_without_gunicorn(client) -> None:
    """Single process (no PROMETHEUS_MULTIPROC_DIR): the app's own registry."""
    assert client.post("/filter", data=FILTER_BODY, content_type="application/json").status_code == 200
    text = client.get("/metrics").get_data(as_text=True)

    assert 'site_extender_requests_total{outcome="ok",verb="filter"} 1.0' in text
    assert 'site_extender_filter_nodes_failed_total{predicate="RegionAndAZ",unresolvable="true"} 1.0' in text
