"""The cache benchmark's split of a speed-up into the pool's busy share and the work's CPU cost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_cache import busy_and_cost  # noqa: E402


def test_a_pool_that_idles_a_core_shows_as_busy_share_not_cost() -> None:
    # one worker: 10 s of work in 10 s. Two workers: the same 10 CPU-seconds, but one core idles 1 s
    # of the 6 s the run takes (5 s each would have been perfect)
    busy, cost = busy_and_cost(seconds=6.0, cpu_s=10.0, workers=2, seconds_1=10.0, cpu_s_1=10.0)
    assert busy == pytest.approx(10.0 / 12.0)          # 10 of the 2 x 6 core-seconds used
    assert cost == pytest.approx(1.0)


def test_work_slowed_side_by_side_shows_as_cost_not_busy_share() -> None:
    # both cores busy throughout, but the same work took 11 CPU-seconds instead of 10
    busy, cost = busy_and_cost(seconds=5.5, cpu_s=11.0, workers=2, seconds_1=10.0, cpu_s_1=10.0)
    assert busy == pytest.approx(1.0)
    assert cost == pytest.approx(1.1)


@pytest.mark.parametrize("run", [(1.33, 2.60, 2.67, 2.67), (2.77, 5.44, 4.95, 4.95), (1.6, 2.9, 2.7, 2.6)])
def test_the_parts_multiply_back_to_the_speedup(run: tuple[float, float, float, float]) -> None:
    seconds, cpu_s, seconds_1, cpu_s_1 = run          # a one-worker run may wait on IO (cpu < wall)
    busy, cost = busy_and_cost(seconds, cpu_s, 2, seconds_1, cpu_s_1)
    assert 2 * busy / cost == pytest.approx(seconds_1 / seconds)
