"""The benchmark harness (`make bench`) at tiny sizes: it generates a cluster the extender accepts,
drives gunicorn over HTTP and writes the results table. No timings are asserted (speed lives in bench/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from bench.__main__ import bodies_of, main
from bench.cluster import VM_ANNOTATION, generate
from bench.measure import Budget, check_filter, drive, percentile
from bench.report import keep_sections, replace_section
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


class _Recorder:
    """A client that answers 200 to everything and keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.sent.append(body)
        return 200, b"{}"


@pytest.mark.parametrize("mode", ["cache", "full"])
def test_every_call_sends_a_fresh_pod(tmp_path: Path, mode: str) -> None:
    """No body is sent twice, and the requests vary: a cache keyed by the request cannot flatter a figure."""
    cluster = generate(5, tmp_path / "inventory", pods=2)
    client = _Recorder()
    drive(client, "/filter", bodies_of(cluster, mode, 0), 10_000, Budget(seconds=0, min_calls=40, max_calls=40, warmup=5))  # type: ignore[arg-type]
    assert len(client.sent) == 45 and len(set(client.sent)) == 45
    requests = {json.loads(body)["Pod"]["metadata"]["annotations"][VM_ANNOTATION] for body in client.sent}
    assert len(requests) == 45
    assert bodies_of(cluster, mode, 0)(7) == client.sent[7], "the same index makes the same body"


def test_pods_option_cycles_that_many_pods(tmp_path: Path) -> None:
    cluster = generate(5, tmp_path / "inventory", pods=2)
    client = _Recorder()
    drive(client, "/filter", bodies_of(cluster, "cache", 3), 3, Budget(seconds=0, min_calls=9, max_calls=9, warmup=3))  # type: ignore[arg-type]
    assert len(set(client.sent)) == 3


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


def test_a_section_is_replaced_in_place_and_kept_by_the_next_full_report() -> None:
    first = replace_section("# Benchmark results\n\n| table |\n", "bench-e2e", "## end to end\nratio 0.5")
    assert first == ("# Benchmark results\n\n| table |\n\n<!-- section: bench-e2e -->\n## end to end\nratio 0.5\n"
                     "<!-- /section: bench-e2e -->\n")
    again = replace_section(first, "bench-e2e", "## end to end\nratio 0.9")
    assert again == first.replace("ratio 0.5", "ratio 0.9")
    # `make bench` writes the whole file again: the section survives, once
    rewritten = keep_sections(again, "# Benchmark results\n\n| new table |\n")
    assert rewritten == again.replace("| table |", "| new table |")
    assert keep_sections(rewritten, rewritten) == rewritten


def test_bench_e2e_says_what_it_measures() -> None:
    from bench.e2e import main as e2e_main

    with pytest.raises(SystemExit) as done:
        e2e_main(["--help"])
    assert done.value.code == 0


def test_bench_binding_sets_the_three_ways_side_by_side(k8s) -> None:
    from bench.binding import measure

    section = measure(k8s, count=3, namespace="bench-binding-test")
    rows = [line for line in section.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| official client, generated method", "| `Transport` (what /bind uses)",
        "| `http.client`, one connection (the floor)"]
    assert rows[-1].endswith("| 1.00x |")
    bound = client.CoreV1Api(k8s.api_client()).list_namespaced_pod("bench-binding-test").items
    assert len(bound) == 9 and {p.spec.node_name for p in bound} == {"bench-binding-node"}
