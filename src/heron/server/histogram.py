"""Log-scale latency buckets shared by the rollup writer and the query side.

Bucket ``b`` holds durations in ``[2**(b/8), 2**((b+1)/8))`` microseconds, so each bucket
is ~9% wide and a percentile read from buckets (with interpolation inside the bucket) is
within ~5% of the exact value. 256 buckets span 1 µs to ~70 minutes; everything below
1 µs lands in bucket 0 and everything above in bucket 255.
"""

from __future__ import annotations

import math

BUCKETS_PER_DOUBLING = 8
NUM_BUCKETS = 256
_LOG2_SCALE = BUCKETS_PER_DOUBLING


def bucket_of(duration_ns: int) -> int:
    """Index of the bucket holding ``duration_ns``."""
    us = duration_ns / 1000.0
    if us < 1.0:
        return 0
    b = int(math.log2(us) * _LOG2_SCALE)
    return b if b < NUM_BUCKETS else NUM_BUCKETS - 1


def bucket_lower_ns(bucket: int) -> float:
    """Lower bound of a bucket in nanoseconds (bucket 0 starts at 0)."""
    if bucket <= 0:
        return 0.0
    return 1000.0 * 2.0 ** (bucket / _LOG2_SCALE)


def bucket_upper_ns(bucket: int) -> float:
    """Upper bound of a bucket in nanoseconds."""
    return 1000.0 * 2.0 ** ((bucket + 1) / _LOG2_SCALE)


def quantile_from_buckets(counts: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a bucketed distribution, in nanoseconds.

    Interpolates linearly inside the bucket where the rank falls.
    """
    total = sum(counts.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for b in sorted(counts):
        c = counts[b]
        if seen + c >= rank:
            frac = (rank - seen) / c if c else 0.0
            lo, hi = bucket_lower_ns(b), bucket_upper_ns(b)
            return lo + (hi - lo) * frac
        seen += c
    return bucket_upper_ns(max(counts))


def count_at_most(counts: dict[int, int], threshold_ns: float) -> float:
    """How many samples are ≤ ``threshold_ns``, interpolating inside the boundary bucket."""
    total = 0.0
    for b, c in counts.items():
        lo, hi = bucket_lower_ns(b), bucket_upper_ns(b)
        if hi <= threshold_ns:
            total += c
        elif lo < threshold_ns:
            total += c * (threshold_ns - lo) / (hi - lo)
    return total


def apdex(counts: dict[int, int], t_ns: float) -> float | None:
    """Apdex score: (satisfied + tolerating/2) / total, with satisfied ≤ T < tolerating ≤ 4T."""
    total = sum(counts.values())
    if total == 0:
        return None
    satisfied = count_at_most(counts, t_ns)
    tolerating = count_at_most(counts, 4 * t_ns) - satisfied
    return (satisfied + tolerating / 2.0) / total
