"""Drive the extender the way kube-scheduler does (one call at a time over a kept-alive connection)
and measure the floor: an in-process JSON decode + encode of the same body with the fastest decoder
installed."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
CHECKED_CALLS = 8
"""Answers checked per case besides the warm-up ones (a check decodes the whole body: not free)."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Latencies of one case, in seconds, in the order they were taken."""

    samples: tuple[float, ...]

    @property
    def calls(self) -> int:
        return len(self.samples)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def per_second(self) -> float:
        """Sequential calls per second: 1 / mean latency (the rate of a caller that waits for each answer)."""
        return len(self.samples) / sum(self.samples)


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the sample below which `pct`% of the samples fall)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to measure one case: at least `min_calls`, then until `seconds` have passed, at most `max_calls`."""

    seconds: float = 5.0
    min_calls: int = 50
    max_calls: int = 5000
    warmup: int = 5


class Client:
    """One kept-alive HTTP/1.1 connection, as Go's http.Client reuses its connection per extender."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.conn.request("POST", path, body=body, headers=HEADERS)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the kept-alive connection while it was idle (keepalive, e.g. while
            # the floor was measured): open a new one, as Go's transport does for an idle connection.
            self.conn.close()
            self.conn.request("POST", path, body=body, headers=HEADERS)
            response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


Check = Callable[[bytes, bytes], None]
"""Validate an answer (request body, answer body); raises on a wrong answer."""


def drive(client: Client, path: str, bodies: Callable[[int], bytes], count: int, budget: Budget,
          check: Check | None = None) -> Timings:
    """POST `bodies(i)` for i = 0, 1, ... (cycling over `count` distinct bodies) one at a time: the
    first `budget.warmup` unmeasured, the next ones measured."""
    for i in range(budget.warmup):
        body = bodies(i % count)
        status, answer = client.post(path, body)
        _expect_ok(path, status, answer)
        if check is not None:
            check(body, answer)
    samples: list[float] = []
    deadline = time.perf_counter() + budget.seconds
    i = 0
    while len(samples) < budget.max_calls and (len(samples) < budget.min_calls or time.perf_counter() < deadline):
        body = bodies((budget.warmup + i) % count)  # past the warm-up's bodies
        start = time.perf_counter()
        status, answer = client.post(path, body)
        samples.append(time.perf_counter() - start)
        _expect_ok(path, status, answer)
        if check is not None and i < min(count, CHECKED_CALLS):
            check(body, answer)
        i += 1
    return Timings(tuple(samples))


def _expect_ok(path: str, status: int, answer: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"POST {path} answered {status}: {answer[:500]!r}")


# --- The floor ----------------------------------------------------------------------------------------


def decoders() -> dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]]:
    """The JSON codecs installed, by name: (decode, encode) of generic Python values."""
    found: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {}
    try:
        import orjson

        found["orjson"] = (orjson.loads, orjson.dumps)
    except ImportError:
        pass
    import msgspec

    found["msgspec"] = (msgspec.json.decode, msgspec.json.encode)
    return found


@dataclass(frozen=True, slots=True)
class Floor:
    codec: str
    timings: Timings


def floor(bodies: Callable[[int], bytes], count: int, budget: Budget) -> Floor:
    """The fastest installed codec's decode + encode of the same bodies, in process (no HTTP, no engine)."""
    best: Floor | None = None
    for name, (decode, encode) in decoders().items():
        for i in range(min(budget.warmup, count)):
            encode(decode(bodies(i)))
        samples: list[float] = []
        deadline = time.perf_counter() + budget.seconds / 2
        i = 0
        while len(samples) < budget.max_calls and (len(samples) < budget.min_calls or time.perf_counter() < deadline):
            body = bodies(i % count)
            start = time.perf_counter()
            encode(decode(body))
            samples.append(time.perf_counter() - start)
            i += 1
        candidate = Floor(name, Timings(tuple(samples)))
        if best is None or candidate.timings.p50 < best.timings.p50:
            best = candidate
    assert best is not None
    return best


# --- Answer checks ------------------------------------------------------------------------------------


def check_filter(body: bytes, answer: bytes) -> None:
    """Every node asked is answered exactly once (passed, failed or unresolvable) and no error."""
    args, result = json.loads(body), json.loads(answer)
    if result.get("Error"):
        raise RuntimeError(f"/filter answered an error: {result['Error']}")
    if args.get("Nodes") is not None:
        asked = [n["metadata"]["name"] for n in args["Nodes"]["items"]]
        passed = [n["metadata"]["name"] for n in (result.get("Nodes") or {}).get("items") or ()]
    else:
        asked, passed = args["NodeNames"], result.get("NodeNames") or []
    answered = sorted([*passed, *result["FailedNodes"], *result["FailedAndUnresolvableNodes"]])
    if answered != sorted(asked):
        raise RuntimeError(f"/filter did not answer each of the {len(asked)} nodes exactly once")


def check_prioritize(body: bytes, answer: bytes) -> None:
    args, result = json.loads(body), json.loads(answer)
    if args.get("Nodes") is not None:
        asked = [n["metadata"]["name"] for n in args["Nodes"]["items"]]
    else:
        asked = args["NodeNames"]
    if [h["Host"] for h in result] != asked or not all(isinstance(h["Score"], int) and 0 <= h["Score"] <= 10 for h in result):
        raise RuntimeError("/prioritize did not score each node asked in 0..10, in order")
