"""docs/operations.md lists every cap of extender/bounds.py with its value and what it bounds."""

from __future__ import annotations

import re

from extender.bounds import LIMITS
from tests.server import REPO


def test_the_caps_table_is_the_code() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    table = text.split("<!-- caps: kept equal to extender/bounds.py by tests/test_bounds_doc.py -->", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| (.+) \|$", table.split("\n\n", 1)[0], re.M)

    assert rows == [(name, str(value), what) for name, (value, what) in LIMITS.items()]


def test_the_caps_fit_a_5000_node_cluster_with_margin() -> None:
    assert LIMITS["MAX_NODES"][0] >= 2 * 5_000
    assert LIMITS["MAX_NAME"][0] >= 253  # a node name is a DNS subdomain
