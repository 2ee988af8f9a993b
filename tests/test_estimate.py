"""When a job is worth checking (batchgen.follow.estimate): plain arithmetic, no server."""

from __future__ import annotations

import pytest

from batchgen.follow.estimate import (
    GROWTH,
    MAX_WAIT_INTERVALS,
    SAMPLE_EVERY,
    SURE_KNOWN,
    SURE_MARGIN,
    Estimator,
)

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


def polled_one_by_one(known: list[float], lag: float = 0.0) -> Estimator:
    """An estimator for a provider that cannot list, with ``known`` durations learned from
    its probes (each tracked at 0 s and seen complete)."""
    estimate = Estimator(base=5.0, refresh_seconds=lag, probes=len(known))
    for n, duration in enumerate(known):
        estimate.track(f"probe{n}", sent_at=0.0)
        estimate.finished(f"probe{n}", at=duration, duration=duration)
    return estimate


def test_once_enough_durations_are_known_a_first_look_waits_until_nearly_every_job_is_done() -> (
    None
):
    known = [60.0 + 10.0 * n for n in range(SURE_KNOWN)]  # 60 .. 150 s
    estimate = polled_one_by_one(known, lag=15.0)
    assert estimate.sure_duration == pytest.approx(150.0 * (1 + SURE_MARGIN))
    estimate.track("k", sent_at=1000.0)
    assert estimate.sure("k")  # the look may fetch the video straight away
    assert estimate.due("k") == pytest.approx(1000.0 + 150.0 * (1 + SURE_MARGIN) + 15.0)


def test_before_enough_durations_are_known_no_look_is_sure() -> None:
    estimate = polled_one_by_one([60.0] * (SURE_KNOWN - 1))
    estimate.track("k", sent_at=1000.0)
    assert estimate.sure_duration is None and not estimate.sure("k")


def test_where_a_list_sees_every_job_no_look_is_sure() -> None:
    estimate = Estimator(base=5.0)
    for n in range(SURE_KNOWN):
        estimate.track(f"done{n}", sent_at=0.0)
        estimate.finished(f"done{n}", at=60.0, duration=60.0)
    estimate.track("k", sent_at=100.0)
    assert not estimate.sure("k")


def test_what_sure_looks_find_teaches_nothing_only_samples_do() -> None:
    estimate = polled_one_by_one([100.0] * SURE_KNOWN)
    sure = estimate.sure_duration
    for n in range(1, SAMPLE_EVERY):  # sure looks: the slow jobs they meet are no sample
        estimate.track(f"k{n}", sent_at=0.0)
        assert estimate.sure(f"k{n}")
        estimate.seen(f"k{n}", at=110.0, progress=20.0)  # a 550 s job
        estimate.finished(f"k{n}", at=600.0, duration=550.0)
    assert estimate.sure_duration == sure
    estimate.track("sample", sent_at=0.0)  # one job in SAMPLE_EVERY is looked at to learn
    assert not estimate.sure("sample")
    for _ in range(SURE_KNOWN):
        estimate.finished("sample", at=600.0, duration=550.0)
        estimate.track("sample", sent_at=0.0)
    assert estimate.sure_duration is not None and estimate.sure_duration > (sure or 0.0)


def test_a_sure_look_that_found_the_job_running_is_followed_by_an_ordinary_one_soon() -> None:
    estimate = polled_one_by_one([100.0] * SURE_KNOWN, lag=15.0)
    estimate.track("k", sent_at=0.0)
    estimate.doubt("k", at=120.0)  # expected done, but not handed over
    assert not estimate.sure("k")
    assert estimate.due("k") == pytest.approx(135.0)  # the next refresh
    estimate.seen("k", at=135.0, progress=80.0)  # its own progress: done by about 169 s
    assert estimate.sure("k")
    assert estimate.due("k") == pytest.approx(135.0 * 100 / 80 + 15.0)


def test_where_a_cap_on_running_jobs_holds_creates_back_no_look_waits_to_be_sure() -> None:
    estimate = Estimator(base=5.0, probes=1, sure=False)  # each job seen done frees a slot
    for n in range(SURE_KNOWN):
        estimate.track(f"done{n}", sent_at=0.0)
        estimate.finished(f"done{n}", at=60.0 + n, duration=60.0 + n)
    estimate.track("k", sent_at=100.0)
    assert not estimate.sure("k")
    assert estimate.due("k") == pytest.approx(100.0 + 64.5)  # the median duration
