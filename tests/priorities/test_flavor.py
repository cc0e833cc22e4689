from __future__ import annotations

import pytest

from extender.priorities import flavor
from tests.builders import make_flavor, make_host, make_inventory, make_request, make_site, make_snapshot, score_at

# host 10 vCPU: a (8 vCPU) fits 1, b (4) fits 2, c (1) fits 10; d has no host (gpu); x is not offered in r1
FLAVORS = [make_flavor("a", 8, 4), make_flavor("b", 4, 4), make_flavor("c", 1, 4),
           make_flavor("d", 1, 4, resource_type="gpu"), make_flavor("x", 1, 4, region="r2")]


@pytest.mark.parametrize(
    ("used_vcpus", "wanted", "score"),
    [
        # The original's Flavor score: BaseWeight 10 / (k + 1), integer division; here x 10 onto 0..100.
        pytest.param(0, ["a", "b"], 100, id="first-choice"),         # 10 // 1
        pytest.param(4, ["a", "b"], 50, id="second-choice"),         # a: 6/8 = 0; b: 6/4 = 1 -> 10 // 2
        pytest.param(8, ["a", "b", "c"], 30, id="third-of-three"),   # only c: 2/1 -> 10 // 3
        pytest.param(0, ["x", "d", "c"], 30, id="skips-unoffered-and-unserved"),
        pytest.param(10, ["a", "b", "c"], 0, id="none-in-stock"),
        pytest.param(8, ["a", "a", "b", "b", "c"], 20, id="fifth"),     # 10 // 5
        pytest.param(8, ["a"] * 5 + ["c"], 10, id="sixth"),          # 10 // 6
        pytest.param(8, ["a"] * 10 + ["c"], 0, id="eleventh"),       # 10 // 11
    ],
)
def test_flavor_rank(used_vcpus: int, wanted: list[str], score: float) -> None:
    inventory = make_inventory(sites=[make_site(hosts=[make_host(used_vcpus=used_vcpus)])], flavors=FLAVORS)
    snapshot = make_snapshot(inventory)

    assert score_at(flavor.new({}), make_request(wanted), snapshot) == pytest.approx(score)
