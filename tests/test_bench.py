"""The benchmark harness (`make bench`) at tiny sizes: it generates a cluster the extender accepts,
drives gunicorn over HTTP and writes the results table. No timings are asserted (speed lives in bench/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.cluster import generate
from bench.measure import check_filter, percentile
from extender.app import create_app
from extender.config.settings import Settings
from tests.conftest import POLICY_DIR

pytestmark = pytest.mark.process


@pytest.mark.parametrize(
    ("samples", "pct", "expected"),
    [
        (list(range(1, 101)), 99, 99),
        (list(range(1, 101)), 50, 50),
        (list(range(100, 0, -1)), 100, 100),
        ([7.0], 99, 7.0),
        ([3, 1, 2], 50, 2),
    ],
    ids=["p99-of-100", "p50-of-100", "unsorted-max", "single", "three"],
)
def test_percentile_is_nearest_rank(samples: list[float], pct: float, expected: float) -> None:
    assert percentile(samples, pct) == expected


def test_generated_cluster_is_served_with_varied_answers(tmp_path: Path) -> None:
    cluster = generate(40, tmp_path / "inventory", pods=12)
    assert cluster.site_ids[:2] == ("site1", "site2") and len(cluster.nodes) == 40
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, inventory=cluster.inventory_dir), "TESTING": True})
    client = app.test_client()
    passed = failed = 0
    for pod in cluster.pods:
        for body in (cluster.cache_body(pod), cluster.full_body(pod)):
            answer = client.post("/filter", data=body, content_type="application/json")
            assert answer.status_code == 200, answer.data
            check_filter(body, answer.data)
            result = json.loads(answer.data)
            passed += len(result["NodeNames"] if result["NodeNames"] is not None else result["Nodes"]["items"])
            failed += len(result["FailedNodes"]) + len(result["FailedAndUnresolvableNodes"])
    assert passed and failed, "the generated pods should pass some sites and fail others"


def test_bench_writes_results_for_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "RESULTS.md"
    assert main(["--sizes", "5", "--seconds", "0", "--min-calls", "3", "--max-calls", "3", "--pods", "2",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    for mode in ("cache", "full", "watch"):
        for verb in ("filter", "prioritize"):
            assert f"| 5 | {mode} | /{verb} | " in text
    # the bind loop: filter, prioritize over what passed, bind the best; at least the filter calls happen
    assert "| 5 | bind | /filter | " in text
    memory = text.split("VmHWM")[1]
    assert "cores" in text and "| 5 | no cluster | " in memory
    assert "| 5 | node cache: 5 nodes, 10 pods | " in memory  # the watch cache synced what the fake API serves
