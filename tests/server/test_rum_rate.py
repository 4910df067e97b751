"""Token buckets of the beacon endpoint's rate limits (ingest/rate.py), on a fake clock."""

from __future__ import annotations

from heron.server.ingest.rate import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, 5.0, clock=clock)
    assert [buckets.take("a") for _ in range(5)] == [0.0] * 5
    assert buckets.take("a") == 0.5  # empty: one token in half a second at 2/s
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 100  # refills to the burst, not beyond
    assert [buckets.take("a") for _ in range(6)][-2:] == [0.0, 0.5]


def test_zero_rate_disables() -> None:
    buckets = TokenBuckets(0.0, 0.0)
    assert all(buckets.take("a") == 0.0 for _ in range(1000))


def test_bounded_memory() -> None:
    clock = Clock()
    buckets = TokenBuckets(1.0, 2.0, max_keys=100, clock=clock)
    for i in range(1000):
        buckets.take(f"client-{i}")
    assert len(buckets._buckets) <= 100
    buckets.take("x")
    assert buckets.take("x") == 0.0 and buckets.take("x") > 0  # a fresh key still limited
