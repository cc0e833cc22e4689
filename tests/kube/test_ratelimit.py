"""The token bucket that paces Event writes: a burst at once, then `qps` a second."""

from __future__ import annotations

import pytest

from extender.kube.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_a_burst_goes_at_once_then_one_token_every_1_over_qps() -> None:
    time = FakeTime()
    bucket = TokenBucket(qps=4, burst=3, clock=time.clock, sleep=time.sleep)
    assert [bucket.take() for _ in range(6)] == [0, 0, 0, 0.25, 0.25, 0.25]
    assert time.slept == [0.25, 0.25, 0.25]


def test_idle_time_refills_up_to_the_burst_and_no_further() -> None:
    time = FakeTime()
    bucket = TokenBucket(qps=2, burst=2, clock=time.clock, sleep=time.sleep)
    bucket.take(), bucket.take()
    time.now += 60  # a minute idle: two tokens, not 120
    assert [bucket.take() for _ in range(3)] == [0, 0, 0.5]


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 5), (5, 0)])
def test_a_bucket_that_would_never_give_a_token_is_refused(qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match="needs qps > 0 and burst >= 1"):
        TokenBucket(qps, burst)
