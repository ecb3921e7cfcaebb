"""``BatchHistogram.observe_many`` gives the series observing one by one gives: the same
bucket counts (values on a bound, between bounds, past the last, zero), count and sum."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import BatchHistogram

BOUNDS = (0.05, 0.1, 1, 60, 86_400)


def samples(kind: type[Histogram], values: list[float], *,
            batches: int) -> tuple[dict[str, float], float]:
    """The bucket and count samples, and the sum (added in another order: equal to
    rounding)."""
    registry = CollectorRegistry()
    h = kind("lag_seconds", "a lag", buckets=BOUNDS, registry=registry)
    if isinstance(h, BatchHistogram):
        step = max(1, len(values) // batches)
        for i in range(0, len(values), step):
            h.observe_many(values[i:i + step])
        h.observe_many([])
    else:
        for v in values:
            h.observe(v)
    (family,) = registry.collect()
    exact = {f"{s.name}{s.labels}": s.value for s in family.samples
             if s.name.endswith(("_bucket", "_count"))}
    (total,) = [s.value for s in family.samples if s.name.endswith("_sum")]
    return exact, total


@given(st.lists(st.one_of(st.sampled_from([0.0, *BOUNDS]),
                          st.integers(0, 10**7).map(lambda n: n / 100)), max_size=300),
       st.integers(1, 5))
def test_batches_give_the_series_of_single_observations(values: list[float],
                                                        batches: int) -> None:
    batched, batched_sum = samples(BatchHistogram, values, batches=batches)
    single, single_sum = samples(Histogram, values, batches=1)
    assert batched == single and len(single) == len(BOUNDS) + 2
    assert batched_sum == pytest.approx(single_sum, rel=1e-12, abs=1e-9)


def test_a_batch_lands_in_the_right_buckets() -> None:
    registry = CollectorRegistry()
    h = BatchHistogram("lag_seconds", "a lag", buckets=BOUNDS, registry=registry)
    values = [0.05, 0.07, 0.1, 5.0, 90_000.0, 90_000.0] + [random.random() / 100] * 3
    h.observe_many(values)
    le = {s.labels["le"]: s.value for s in next(iter(registry.collect())).samples
          if s.name.endswith("_bucket")}
    assert le == {"0.05": 4, "0.1": 6, "1.0": 6, "60.0": 7, "86400.0": 7, "+Inf": 9}
