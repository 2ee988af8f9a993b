"""HTTP answers by what they mean for money, per profile, through the real CLI against the
simulated API on 127.0.0.1 (served with each profile's flavour).

- a Cloudflare 522 (the relay was never reached) made nothing: retried;
- a 524 (the relay took the request and did not answer in time) may have made a job: looked
  up where the provider lists, else ``unresolved``, never resent blindly nor ``rejected``;
- "no such job" as the profile says it looks (new-api: 400 ``task_not_exist``) is ``lost``;
- a 429 costs nothing: it never counts as a try, the row waits within ``--give-up-after``,
  and the summary says how long the provider held the run back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.profile_files import load_profile
from batchgen.provider.pacing import Pacer
from batchgen.render import duration
from tests.helpers import FAST, FOLLOW, FakeClock, Invocation, Invoke, write_csv

Start = Callable[..., RunningMock]


def manifest(folder: Path, rows: int, name: str = "night") -> Path:
    """``rows`` distinct prompts; every other column is the profile's default."""
    lines = [["id", "prompt"]] + [[f"r{n:03d}", f"{name} shot {n}"] for n in range(rows)]
    return write_csv(folder / f"{name}.csv", lines)


def results_of(path: Path) -> Path:
    return path.with_name(f"{path.stem}.results.csv")


def flavour(start: Start, profile: str, faults: Faults, **overrides: object) -> RunningMock:
    """The simulated API as ``profile``'s provider serves it, with ``faults``."""
    return start(MockConfig.for_profile(load_profile(profile), faults=faults, **overrides))


def run(invoke: Invoke, path: Path, mock: RunningMock, profile: str, *extra: str) -> Invocation:
    result = invoke(
        "run", path, "--base-url", mock.base_url, "--profile", profile, *FAST,
        "--request-timeout", "10", "--concurrency", "8", *extra,
    )  # fmt: skip
    assert "Traceback" not in result.output
    return result


def test_a_524_or_520_is_looked_up_where_the_provider_lists_and_a_522_is_retried(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 40
    path = manifest(tmp_path, rows)
    faults = Faults(seed=31, html_524=0.25, html_520=0.1, html_522=0.25)
    mock = flavour(start_mock, "openai", faults)
    # ten tries: a row meeting nine 522s in a row (p = 4e-6) is the only way left to fail
    result = run(invoke, path, mock, "openai", "--max-attempts", "10")
    assert result.exit_code == 0, result.output
    states = read_ledger(results_of(path))
    assert {s["status"] for s in states.values()} <= {"queued", "completed"}  # none rejected
    assert mock.state.jobs_created == rows  # the 524s' jobs were adopted, not bought again
    assert max(mock.state.job_count_by_prompt().values()) == 1
    assert {s["job_id"] for s in states.values()} == set(mock.state.jobs)
    assert mock.state.requests_by_endpoint["list"] > 0
    assert mock.state.create_requests > rows  # the 522s were sent again


def test_behind_a_relay_that_cannot_list_a_524_is_unresolved_and_never_resent(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 40
    path = manifest(tmp_path, rows)
    mock = flavour(start_mock, "new-api", Faults(seed=32, html_524=0.2, html_522=0.2))
    result = run(invoke, path, mock, "new-api")
    assert result.exit_code == 1, result.output
    states = read_ledger(results_of(path))
    unresolved = {k: s for k, s in states.items() if s["status"] == "unresolved"}
    assert unresolved and "rejected" not in {s["status"] for s in states.values()}
    made = mock.state.job_count_by_prompt()
    for key, state in unresolved.items():
        assert made[state["prompt"]] == 1  # behind each 524 a job really was made...
        assert "HTTP 524" in state["error_message"]
        assert f"batchgen resolve RESULTS {key} --job-id" in state["error_message"]
    assert max(made.values()) == 1  # ...and none was bought twice
    assert all(s["job_id"] for k, s in states.items() if k not in unresolved)

    before = mock.state.create_requests
    again = run(invoke, path, mock, "new-api")  # the next night: still not resent
    assert again.exit_code == 1
    assert mock.state.create_requests == before


def test_a_524_on_the_last_try_behind_a_relay_that_cannot_list_says_how_to_resolve_it(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path = manifest(tmp_path, 2)
    mock = flavour(start_mock, "new-api", Faults(seed=34, html_524=1.0))
    assert run(invoke, path, mock, "new-api", "--max-attempts", "1").exit_code == 1
    states = read_ledger(results_of(path))
    for key, state in states.items():
        assert state["status"] == "unresolved"
        assert "HTTP 524" in state["error_message"]
        assert f"batchgen resolve RESULTS {key} --job-id" in state["error_message"]
    assert mock.state.create_requests == 2  # each sent once: a 524 is never resent blindly


def test_no_such_job_as_new_api_says_it_is_lost_and_a_524_on_a_poll_is_retried(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path = manifest(tmp_path, 6)
    faults = Faults(seed=33, html_524=0.3, endpoints=frozenset({"retrieve"}))
    mock = flavour(start_mock, "new-api", faults, refresh_seconds=0.0, job_duration=0.2)
    assert run(invoke, path, mock, "new-api").exit_code == 0
    states = read_ledger(results_of(path))
    gone = states["r000"]["job_id"]
    mock.state.delete(gone)  # the relay forgot it: it answers 400 task_not_exist now
    result = invoke("poll", results_of(path), "--base-url", mock.base_url, *FOLLOW, "--backoff",
                    "0.01")  # fmt: skip
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output  # a job was lost
    states = read_ledger(results_of(path))
    assert states["r000"]["status"] == "lost"
    assert states["r000"]["error_code"] == "task_not_exist"
    assert {s["status"] for k, s in states.items() if k != "r000"} == {"completed"}


def test_a_busy_relay_without_retry_after_never_makes_a_row_give_up(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 20
    path = manifest(tmp_path, rows)
    mock = flavour(start_mock, "new-api", Faults(seed=34, error_429=0.6))
    summary = tmp_path / "summary.json"
    # one try per row: before, the first 429 was the end of a row
    result = run(
        invoke, path, mock, "new-api", "--max-attempts", "1", "--summary-json", str(summary)
    )
    assert result.exit_code == 0, result.output
    states = read_ledger(results_of(path))
    assert all(s["job_id"] for s in states.values())
    assert mock.state.jobs_created == rows
    assert mock.state.create_requests > 2 * rows  # many rows met more than one 429
    assert "the provider held the run back" in result.stdout
    assert json.loads(summary.read_text())["held_back_by_429_seconds"] > 0


def test_429s_beyond_give_up_after_leave_the_row_error_saying_so_then_it_is_sent(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path = manifest(tmp_path, 2)
    mock = flavour(start_mock, "new-api", Faults(seed=35, error_429=1.0))
    started = time.monotonic()
    result = run(invoke, path, mock, "new-api", "--max-attempts", "1", "--give-up-after", "0.5")
    assert time.monotonic() - started < 30
    assert result.exit_code == 1, result.output
    states = read_ledger(results_of(path))
    assert {s["status"] for s in states.values()} == {"error"}
    assert all("--give-up-after" in s["error_message"] for s in states.values())
    assert "当前分组上游负载已饱和" in states["r000"]["error_message"]  # the relay's own words
    assert mock.state.create_requests > 2  # waited through several 429s, not one try each
    assert mock.state.jobs_created == 0

    mock.config.faults = Faults()  # the relay is free again: the rows are simply sent
    assert run(invoke, path, mock, "new-api").exit_code == 0
    assert mock.state.jobs_created == 2


def test_the_pacer_counts_overlapping_pauses_once() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(60, clock=clock)
    pacer.pause(2.0)  # 0..2
    clock.advance(1.0)
    pacer.pause(2.0)  # 1..3: one more second
    clock.advance(9.0)
    pacer.pause(0.5)  # 10..10.5
    assert pacer.held_back == 3.5


def test_how_long_the_run_was_held_back_reads_as_people_say_it() -> None:
    said = [duration(s) for s in (0.01, 3.21, 12.4, 200, 3925)]
    assert said == ["under 0.1 s", "3.2 s", "12 s", "3 min 20 s", "1 h 5 min"]
