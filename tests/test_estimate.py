"""When a job is worth checking (batchgen.follow.estimate): plain arithmetic, no server."""

from __future__ import annotations

import pytest

from batchgen.follow.estimate import GROWTH, MAX_WAIT_INTERVALS, Estimator

MAX_WAIT = 5.0 * MAX_WAIT_INTERVALS  # with base=5.0


def test_progress_says_when_a_job_will_be_done() -> None:
    estimate = Estimator(base=5.0)
    estimate.track("k", sent_at=1000.0)
    estimate.seen("k", at=1024.0, progress=40.0)  # 40 % after 24 s: done at 60 s
    assert estimate.due("k") == pytest.approx(1060.0)


def test_a_cached_status_is_checked_one_refresh_period_after_the_expected_completion() -> None:
    estimate = Estimator(base=5.0, refresh_seconds=15.0)
    estimate.track("k", sent_at=1000.0)
    estimate.seen("k", at=1024.0, progress=40.0)
    assert estimate.due("k") == pytest.approx(1075.0)  # shown complete by the next refresh


def test_with_nothing_to_go_on_each_check_waits_longer() -> None:
    estimate = Estimator(base=2.0)
    estimate.track("k", sent_at=0.0)
    assert estimate.due("k") == 2.0
    seen_at = 0.0
    for n in range(1, 5):
        seen_at = estimate.due("k")
        estimate.seen("k", at=seen_at, progress=0.0)  # still queued
        assert estimate.due("k") == pytest.approx(seen_at + 2.0 * GROWTH**n)


def test_jobs_not_yet_seen_are_expected_to_take_as_long_as_the_nights_finished_ones() -> None:
    estimate = Estimator(base=5.0, refresh_seconds=10.0)
    for n, duration in enumerate((40.0, 60.0, 600.0)):  # the median, not the slow one
        estimate.track(f"done{n}", sent_at=0.0)
        estimate.finished(f"done{n}", at=duration + 10.0, duration=duration)
    assert estimate.typical_duration == 60.0
    estimate.track("new", sent_at=1000.0)
    assert estimate.due("new") == pytest.approx(1000.0 + 60.0 + 10.0)


def test_without_the_providers_duration_the_time_it_took_to_show_is_learned() -> None:
    estimate = Estimator(base=5.0, refresh_seconds=10.0)
    estimate.track("k", sent_at=100.0)
    estimate.finished("k", at=145.0)  # seen complete 45 s after sending, ~5 s of it lag
    assert estimate.typical_duration == pytest.approx(40.0)


def test_a_job_still_running_past_its_estimate_is_looked_at_again_soon() -> None:
    estimate = Estimator(base=5.0, refresh_seconds=15.0)
    estimate.track("quick", sent_at=0.0)
    estimate.finished("quick", at=25.0, duration=10.0)
    estimate.track("slow", sent_at=0.0)
    estimate.seen("slow", at=40.0, progress=0.0)  # expected by 25 s, still queued at 40 s
    assert estimate.due("slow") == pytest.approx(55.0)  # the next refresh, not never
    estimate.forget("slow")
    assert "slow" not in estimate and len(estimate) == 0


def test_a_loose_estimate_never_leaves_a_job_unchecked_for_long() -> None:
    estimate = Estimator(base=5.0, refresh_seconds=15.0, probes=0)
    estimate.track("k", sent_at=0.0)
    estimate.seen("k", at=15.0, progress=1.0)  # a cached 1 %: "done in 25 minutes"
    assert estimate.due("k") == pytest.approx(15.0 + MAX_WAIT)
    for n in range(3):
        estimate.track(f"done{n}", sent_at=0.0)
        estimate.finished(f"done{n}", at=30.0, duration=10.0)
    assert estimate.due("k") == pytest.approx(0.0 + 10.0 + 15.0)  # as long as the others


def test_while_nothing_is_known_a_few_probes_learn_and_the_others_wait_for_the_lesson() -> None:
    estimate = Estimator(base=5.0, refresh_seconds=15.0, probes=2)
    for n in range(5):
        estimate.track(f"k{n}", sent_at=float(n))
    assert [estimate.due(f"k{n}") for n in range(2)] == [5.0, 6.0]  # probes: one interval
    assert estimate.due("k4") == 4.0 + MAX_WAIT  # waits for the probes, bounded
    estimate.seen("k0", at=15.0, progress=2.0)  # a cached 2 %: says little, probe again
    assert estimate.due("k0") == 15.0 + 5.0 * GROWTH
    lessons = estimate.lessons
    estimate.finished("k1", at=30.0, duration=10.0)
    assert estimate.lessons == lessons + 1  # waiting callers look again...
    assert estimate.due("k4") == 4.0 + 10.0 + 15.0  # ...and are checked when done


def test_a_job_slower_than_the_nights_median_is_estimated_by_its_own_progress() -> None:
    estimate = Estimator(base=20.0)  # a long first interval: looks at most 240 s apart
    estimate.track("quick", sent_at=0.0)
    estimate.finished("quick", at=60.0, duration=60.0)
    estimate.track("slow", sent_at=0.0)
    estimate.seen("slow", at=60.0, progress=25.0)  # the median said 60 s: it is a 240 s job
    assert estimate.due("slow") == pytest.approx(240.0)  # not polled every few seconds
