"""A job surely done is fetched straight away where the provider's content endpoint says
"not ready" for an unfinished one (new-api's proxy): the download is its status check,
one request instead of two. Through the real CLI against the simulated API on 127.0.0.1.

- most videos of a night come with no status check at all, and every one is fetched;
- a job that is not done when expected (here: one that failed) is then checked the
  ordinary way, and recorded as the provider says;
- a provider whose content endpoint does not say so (the profile's default) is always
  checked first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchgen.ledger import read_ledger
from batchgen.mock import MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import Invocation, Invoke, lines_for, write_csv

Start = Callable[..., RunningMock]
# creates spread over a few seconds, longer than a job takes, as a night's are
QUICK = ("--rpm", "1500", "--backoff", "0.01", "--poll-interval", "0.1", "--timeout", "60")


def relay(folder: Path, *, says_not_ready: bool = True) -> Path:
    """new-api with a 0.25 s refresh period (a quicker night than its 15 s)."""
    path = folder / "quick-relay.yaml"
    text = "extends: new-api\nname: quick-relay\nrefresh_seconds: 0.25\n"
    if not says_not_ready:
        text += "video:\n  content_says_not_ready: false\n"
    path.write_text(text, encoding="utf-8")
    return path


def night(
    folder: Path,
    invoke: Invoke,
    start_mock: Start,
    prompts: list[str],
    *,
    says_not_ready: bool = True,
) -> tuple[Invocation, Path, RunningMock]:
    """``batchgen run --wait --download`` of one row per prompt against a quick new-api whose
    jobs take 0.5 to 1 s each (seeded); the results file's path and the simulated API."""
    profile = relay(folder, says_not_ready=says_not_ready)
    config = load_profile(str(profile))
    mock = start_mock(MockConfig.for_profile(config, job_duration=1.0, job_duration_min=0.5))
    lines = [["id", "prompt"]] + [[f"r{n:03d}", p] for n, p in enumerate(prompts)]
    path = write_csv(folder / "night.csv", lines)
    result = invoke(
        "run", path, "--base-url", mock.base_url, "--profile", profile, *QUICK, "--wait",
        "--download", folder / "videos",
    )  # fmt: skip
    assert "Traceback" not in result.output
    return result, path.with_name("night.results.csv"), mock


def test_most_videos_of_a_night_come_without_a_status_check(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 100
    result, results, mock = night(tmp_path, invoke, start_mock, [f"shot {n}" for n in range(rows)])
    assert result.exit_code == 0, result.output
    states = read_ledger(results)
    assert {s["status"] for s in states.values()} == {"downloaded"}
    assert all((tmp_path / "videos" / Path(s["file"]).name).is_file() for s in states.values())
    seen = mock.state.requests_by_endpoint
    assert seen["create"] == rows
    # a poll then a download for every video would be 2 x rows
    assert seen["retrieve"] + seen["content"] <= 1.6 * rows, seen
    # a video handed over before any check is still recorded complete, then downloaded
    handed = [k for k in states if [ln["status"] for ln in lines_for(results, k)][1:] == [
        "queued", "completed", "downloaded"]]  # fmt: skip
    assert len(handed) >= rows / 2


def test_a_job_not_done_when_expected_is_then_checked_and_recorded_as_the_provider_says(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 40
    prompts = [f"shot {n}" for n in range(rows)]
    prompts[-1] += " [fail]"  # the simulated provider fails this one when it ends
    result, results, _ = night(tmp_path, invoke, start_mock, prompts)
    assert result.exit_code == 1, result.output  # a row needs attention
    states = read_ledger(results)
    failed = states[f"r{rows - 1:03d}"]
    assert failed["status"] == "failed"
    assert failed["error_code"] == "moderation_blocked"  # the status check's word, not "not ready"
    others = [s["status"] for s in states.values() if s is not failed]
    assert others == ["downloaded"] * (rows - 1)


def test_where_the_content_endpoint_does_not_say_not_ready_every_job_is_checked_first(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    rows = 30
    prompts = [f"shot {n}" for n in range(rows)]
    result, results, mock = night(tmp_path, invoke, start_mock, prompts, says_not_ready=False)
    assert result.exit_code == 0, result.output
    assert {s["status"] for s in read_ledger(results).values()} == {"downloaded"}
    seen = mock.state.requests_by_endpoint
    assert len(mock.state.retrieved_at) == rows  # every job had a status check
    assert seen["content"] == rows  # and one download each, never one before it
