"""Mean of affinity (100 when a placed VM matches the affinity selector, else 0) and anti-affinity
(0 when a placed VM matches the anti-affinity selector, else 100)."""

from __future__ import annotations

import pytest

from extender.priorities import stack_affinity
from tests.builders import make_placement, make_request, make_selector, make_snapshot, score_at

WEB = make_selector({"app": "web"})
DB = make_selector(expressions=[("app", "In", ["db", "cache"])])
NOT_WEB = make_selector(expressions=[("app", "NotIn", ["web"]), ("tier", "Exists", [])])
NO_TIER = make_selector(expressions=[("tier", "DoesNotExist", [])])
EMPTY = make_selector()

PLACED = [make_placement(labels={"app": "web", "tier": "front"}), make_placement(labels={"app": "cache"})]


@pytest.mark.parametrize(
    ("affinity", "anti", "placements", "score"),
    [
        pytest.param(None, None, PLACED, 50, id="no-selectors"),
        pytest.param(WEB, None, PLACED, 100, id="affinity-matches"),
        pytest.param(WEB, None, [], 50, id="affinity-nothing-placed"),
        pytest.param(None, DB, PLACED, 0, id="anti-matches"),
        pytest.param(WEB, DB, PLACED, 50, id="both-match"),
        pytest.param(NOT_WEB, None, PLACED, 50, id="notin-and-exists-miss"),  # cache has no tier, web is web
        pytest.param(NO_TIER, None, PLACED, 100, id="doesnotexist-matches"),  # the cache VM has no tier
        pytest.param(EMPTY, EMPTY, PLACED, 50, id="empty-selectors-select-nothing"),
    ],
)
def test_stack_affinity(affinity, anti, placements, score) -> None:
    snapshot = make_snapshot(placements=placements)

    result = score_at(stack_affinity.new({}), make_request(affinity=affinity, antiaffinity=anti), snapshot)

    assert result == score
