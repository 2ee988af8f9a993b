"""A provider that caps jobs running per key (app relays: 429 "too many running tasks").

With the cap known (the sora-app profile's ``max_running: 3``, or ``--max-running N``),
``batchgen run --wait`` never has more than N jobs running at the provider and draws no
429s; without it, the simulated app relay's 429s are waited through as before; without
``--wait`` a run sends only what fits and says the rest wait for the next run; a stop while
waiting for a running slot sends nothing more.

Every test runs the real CLI (in-process, or as a subprocess for signals) against the
simulated app relay on 127.0.0.1, which enforces the cap and records who ran when.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.ledger import Record, read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.mock.running import peak_running
from batchgen.profile_files import load_profile
from tests.helpers import (
    API_KEY,
    FAST,
    FOLLOW,
    FakeClock,
    Invocation,
    Invoke,
    run_command,
    wait_for,
    write,
    write_csv,
)

Start = Callable[..., RunningMock]
JOB_SECONDS = 0.3  # long enough for jobs to overlap, short enough for a quick test


def manifest(folder: Path, rows: int) -> Path:
    """``rows`` distinct prompts; every other column is the profile's default."""
    lines = [["id", "prompt"]] + [[f"r{n:02d}", f"harbour at dawn, take {n}"] for n in range(rows)]
    return write_csv(folder / "night.csv", lines)


def app_profile(folder: Path, extra: str = "") -> Path:
    """The sora-app profile, its cap of 3 included, but with statuses that change at once
    (the real relays refresh every 5 s, which polls never outpace: too slow for a test)."""
    return write(folder / "app.yaml", f"extends: sora-app\nrefresh_seconds: 0\n{extra}")


def app_relay(start: Start, profile: Path, **overrides: object) -> RunningMock:
    """The simulated app relay as ``profile`` says it behaves (running cap and all)."""
    settings = {"faults": Faults(seed=13), "job_duration": JOB_SECONDS, **overrides}
    return start(MockConfig.for_profile(load_profile(str(profile)), **settings))


def run(invoke: Invoke, path: Path, mock: RunningMock, profile: Path, *extra: str) -> Invocation:
    result = invoke(
        "run", path, "--base-url", mock.base_url, "--profile", profile, *FAST,
        "--concurrency", "8", "--request-timeout", "10", *extra,
    )  # fmt: skip
    assert "Traceback" not in result.output
    return result


def states(path: Path) -> list[Record]:
    return list(read_ledger(path.with_name("night.results.csv")).values())


def statuses(path: Path) -> list[str]:
    return sorted(state["status"] for state in states(path))


def with_job(path: Path) -> int:
    """Rows of the results file that have a job at the provider."""
    return sum(1 for state in states(path) if state.get("job_id"))


def test_the_profile_cap_keeps_three_running_draws_no_429_and_every_row_completes(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path, profile = manifest(tmp_path, 10), app_profile(tmp_path)
    mock = app_relay(start_mock, profile)
    assert mock.config.max_running == 3  # the relay enforces what the profile says

    result = run(invoke, path, mock, profile, *FOLLOW)

    assert result.exit_code == 0, result.output
    assert statuses(path) == ["completed"] * 10
    assert mock.state.rate_limited == 0  # not one "too many running tasks"
    assert peak_running(mock.state, mock.config) == 3  # the cap was used, never passed
    assert mock.state.jobs_created == mock.state.create_requests == 10  # each paid once


def test_max_running_1_sends_one_job_at_a_time(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path, profile = manifest(tmp_path, 4), app_profile(tmp_path)
    mock = app_relay(start_mock, profile)

    result = run(invoke, path, mock, profile, *FOLLOW, "--max-running", "1")

    assert result.exit_code == 0, result.output
    assert statuses(path) == ["completed"] * 4
    assert peak_running(mock.state, mock.config) == 1
    assert mock.state.rate_limited == 0


@pytest.mark.parametrize(
    ("extra_profile", "flags"),
    [("max_running: null\n", ()), ("", ("--max-running", "0"))],
    ids=["profile-null", "flag-0"],
)
def test_with_the_cap_off_the_relays_429s_are_waited_through_and_rows_complete(
    tmp_path: Path, invoke: Invoke, start_mock: Start, extra_profile: str, flags: tuple[str, ...]
) -> None:
    path = manifest(tmp_path, 6)
    mock = app_relay(start_mock, app_profile(tmp_path))  # the relay still caps at 3
    client_profile = write(tmp_path / "uncapped.yaml", f"extends: app.yaml\n{extra_profile}")

    result = run(invoke, path, mock, client_profile, *FOLLOW, *flags)

    assert result.exit_code == 0, result.output
    assert statuses(path) == ["completed"] * 6
    assert mock.state.rate_limited > 0  # as before the cap was known: 429s, waited through
    assert peak_running(mock.state, mock.config) == 3  # the relay held its own cap
    assert mock.state.jobs_created == 6  # a 429 made nothing: no row paid twice


def test_without_wait_a_run_sends_what_fits_and_the_next_runs_send_the_rest(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path, profile = manifest(tmp_path, 5), app_profile(tmp_path)
    mock = app_relay(start_mock, profile)
    # the relay's time stands, ten minutes ago, so its jobs run until the test lets it go
    mock.state.clock = FakeClock(time.time() - 600)

    first = run(invoke, path, mock, profile)
    assert first.exit_code == 0, first.output
    assert mock.state.create_requests == 3  # 3 - 0 running: no 429 drawn, none waited for
    assert "2 row(s) not sent" in first.output
    assert "with --wait a run sends them as jobs finish" in first.output
    assert len(states(path)) == with_job(path) == 3  # the other two have no line: not sent

    again = run(invoke, path, mock, profile)  # the ledger's 3 jobs are still running
    assert again.exit_code == 0, again.output
    assert mock.state.create_requests == 3
    assert "2 row(s) not sent: 3 job(s) running" in again.output

    mock.state.clock = time.time  # real time again: the three finished long ago
    last = run(invoke, path, mock, profile, *FOLLOW)
    assert last.exit_code == 0, last.output
    assert statuses(path) == ["completed"] * 5
    assert mock.state.create_requests == mock.state.jobs_created == 5
    assert mock.state.rate_limited == 0


def test_when_the_wait_times_out_the_rows_waiting_for_a_slot_are_left_for_the_next_run(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path, profile = manifest(tmp_path, 5), app_profile(tmp_path)
    mock = app_relay(start_mock, profile, job_duration=120.0)  # none finishes in time

    result = run(invoke, path, mock, profile, *FOLLOW, "--timeout", "0.5")

    assert result.exit_code == 4, result.output  # the wait gave up: run again to go on
    assert "2 row(s) not sent: 3 job(s) running" in result.output
    assert mock.state.create_requests == 3
    assert len(states(path)) == with_job(path) == 3


def test_a_profile_with_a_bad_max_running_is_refused_naming_it_and_sends_nothing(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    path = manifest(tmp_path, 2)
    mock = app_relay(start_mock, app_profile(tmp_path))
    for bad in ("0", "three", "true", "2.5"):
        profile = write(tmp_path / "bad.yaml", f"extends: sora-app\nmax_running: {bad}\n")
        result = run(invoke, path, mock, profile)
        assert result.exit_code == 2, result.output
        assert "bad.yaml" in result.output and "max_running" in result.output, result.output
    assert mock.state.create_requests == 0


def test_profiles_shows_the_cap(invoke: Invoke) -> None:
    shown = invoke("profiles", "sora-app")
    assert shown.exit_code == 0, shown.output
    assert "jobs running at once per key: at most 3" in shown.output
    assert "jobs running at once per key: no cap" in invoke("profiles", "openai").output


def test_a_stop_while_waiting_for_a_running_slot_sends_nothing_more(
    tmp_path: Path, start_mock: Start
) -> None:
    path, profile = manifest(tmp_path, 6), app_profile(tmp_path)
    mock = app_relay(start_mock, profile, job_duration=120.0)  # the first three run on
    log = tmp_path / "stderr.log"
    command = run_command(path, mock.base_url, "--profile", str(profile), *FOLLOW)
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr)
        try:
            # three rows sent and recorded; the other three wait for a running slot
            wait_for(lambda: "the other rows are sent as jobs finish" in log.read_text())
            wait_for(lambda: with_job(path) == 3)
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
        finally:
            process.kill()  # only if it is still running (a failed wait)
    text = log.read_text()
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert mock.state.create_requests == 3  # nothing sent after the stop
    assert mock.state.rate_limited == 0
    assert len(states(path)) == with_job(path) == 3  # the waiting rows have no line


def test_a_job_the_follower_gives_up_on_frees_its_running_slot(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    # 404 is not "no such job" to this profile, so a poll answered 404 is an error the
    # follower gives up on for the night: its job may still run, but waiting for it to be
    # seen to end would hold the last slot, and the other rows, for ever.
    profile = app_profile(tmp_path, "not_found: {statuses: [499]}\n")
    mock = app_relay(start_mock, profile, job_duration=1.0)
    path = manifest(tmp_path, 2)
    first_job_gone = threading.Thread(target=delete_the_first_job, args=(mock,), daemon=True)
    first_job_gone.start()
    result = run(invoke, path, mock, profile, *FOLLOW, "--max-running", "1")
    first_job_gone.join(timeout=30)
    assert result.exit_code == 1, result.output  # the given-up poll needs attention...
    assert mock.state.jobs_created == 2  # ...and the other row was still sent
    assert statuses(path).count("completed") == 1  # (the forgotten job cannot complete)


def delete_the_first_job(mock: RunningMock) -> None:
    """Make the provider forget the first job as soon as it exists (before its first poll)."""
    wait_for(lambda: len(mock.state.jobs) >= 1)
    mock.state.delete(next(iter(mock.state.jobs)))
