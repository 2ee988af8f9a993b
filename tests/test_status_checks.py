"""Status checks that cost little and never hold a night back, through the real CLI
against the simulated API on 127.0.0.1 (served as each profile's provider would).

- where the provider lists, status comes from list pages (up to 100 jobs a request),
  never one poll per job; a job the list does not show is polled on its own;
- a list answered 429 slows the sweeps down, and the night still ends;
- where it cannot list, each job is polled when it is expected to be done, never twice
  within the provider's refresh period.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import Invocation, Invoke, write_csv

Start = Callable[..., RunningMock]
QUICK = ("--rpm", "6000", "--backoff", "0.01", "--poll-interval", "0.5", "--timeout", "60")


def manifest(folder: Path, rows: int) -> Path:
    lines = [["id", "prompt"]] + [[f"r{n:03d}", f"shot {n}"] for n in range(rows)]
    return write_csv(folder / "night.csv", lines)


def night(invoke: Invoke, path: Path, mock: RunningMock, profile: str, *extra: str) -> Invocation:
    """``batchgen run --wait --download``, every setting but the pace at its default."""
    result = invoke(
        "run", path, "--base-url", mock.base_url, "--profile", profile, *QUICK, "--wait",
        "--download", path.parent / "videos", *extra,
    )  # fmt: skip
    assert "Traceback" not in result.output
    return result


def statuses(path: Path) -> set[str]:
    return {s["status"] for s in read_ledger(path.with_name("night.results.csv")).values()}


def test_where_the_provider_lists_status_comes_from_list_pages_not_a_poll_per_job(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 30
    path = manifest(tmp_path, rows)
    mock = start_mock(MockConfig.for_profile(load_profile("openai"), job_duration=1.0))
    result = night(invoke, path, mock, "openai")
    assert result.exit_code == 0, result.output
    assert statuses(path) == {"downloaded"}
    seen = mock.state.requests_by_endpoint
    assert seen["retrieve"] == 0
    assert 1 <= seen["list"] <= rows / 3  # a poll per job would be `rows` at the least
    assert seen["content"] == 2 * rows  # each video and its thumbnail (a default preview)


def test_a_job_the_list_does_not_show_is_polled_on_its_own(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path = manifest(tmp_path, 3)
    mock = start_mock(MockConfig.for_profile(load_profile("openai"), job_duration=3600.0))
    sent = invoke("run", path, "--base-url", mock.base_url, "--profile", "openai", *QUICK)
    assert sent.exit_code == 0, sent.output
    results = path.with_name("night.results.csv")
    gone = read_ledger(results)["r001"]["job_id"]
    mock.state.delete(gone)  # the provider lost it: not in its list, 404 on its own
    polled = invoke("poll", results, "--base-url", mock.base_url)
    assert polled.exit_code == 1, polled.output  # a job was lost
    states = read_ledger(results)
    assert states["r001"]["status"] == "lost"
    assert {states[k]["status"] for k in ("r000", "r002")} == {"queued"}
    assert mock.state.requests_by_endpoint["list"] == 1  # one page for all three
    assert mock.state.requests_by_endpoint["retrieve"] == 1  # only the one it lacks


def test_a_list_answered_429_slows_the_sweeps_and_the_night_still_ends(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 20
    path = manifest(tmp_path, rows)
    faults = Faults(seed=41, error_429=0.5, retry_after_seconds=0.2, endpoints=frozenset({"list"}))
    config = MockConfig.for_profile(load_profile("openai"), faults=faults, job_duration=1.0)
    mock = start_mock(config)
    result = night(invoke, path, mock, "openai")
    assert result.exit_code == 0, result.output
    assert statuses(path) == {"downloaded"}
    assert mock.state.rate_limited > 0  # the faults did fire
    assert mock.state.requests_by_endpoint["retrieve"] == 0
    assert mock.state.jobs_created == rows  # a busy list never costs a create


def test_where_the_provider_cannot_list_no_job_is_polled_within_its_refresh_period(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 12
    path = manifest(tmp_path, rows)
    quick_relay = tmp_path / "quick-relay.yaml"
    quick_relay.write_text("extends: new-api\nname: quick-relay\nrefresh_seconds: 1\n")
    profile = load_profile(str(quick_relay))
    mock = start_mock(MockConfig.for_profile(profile, job_duration=2.0))
    result = night(invoke, path, mock, str(quick_relay))
    assert result.exit_code == 0, result.output
    assert statuses(path) == {"downloaded"}
    polls = mock.state.retrieved_at
    assert len(polls) == rows
    for times in polls.values():
        assert all(later - earlier >= 0.99 for earlier, later in pairwise(times))
    assert sum(map(len, polls.values())) / rows <= 2.5  # polled when due, not every second
