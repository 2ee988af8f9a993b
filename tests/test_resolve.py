"""``batchgen resolve RESULTS KEY``: the way out of ``unresolved`` where nothing can list.

The rows are made unresolved by real runs against the simulated API served as a relay that
cannot list its jobs; the "dashboard" a user would check is the simulated API's own state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import FAST, FOLLOW, Invocation, Invoke, write_csv

Start = Callable[..., RunningMock]


def unresolved_batch(
    folder: Path, invoke: Invoke, start: Start, profile: str, faults: Faults
) -> tuple[Path, RunningMock, Path]:
    """Two rows sent to ``profile``'s simulated relay with ``faults``: row ``a`` ends
    unresolved, row ``b`` (sent once the faults are off) has its job."""
    lines = [["id", "prompt"], ["a", "a storm at sea"], ["b", "a calm lake"]]
    manifest = write_csv(folder / "night.csv", lines)
    mock = start(MockConfig.for_profile(load_profile(profile), faults=faults, job_duration=0.2))
    assert run(invoke, manifest, mock, profile, "--limit", "1").exit_code == 1
    mock.config.faults = Faults()
    assert run(invoke, manifest, mock, profile).exit_code == 1
    results = folder / "night.results.csv"
    states = read_ledger(results)
    assert states["a"]["status"] == "unresolved" and states["b"]["job_id"]
    return manifest, mock, results


def run(invoke: Invoke, manifest: Path, mock: RunningMock, profile: str, *extra: str) -> Invocation:
    result = invoke(
        "run", manifest, "--base-url", mock.base_url, "--profile", profile, *FAST, *extra
    )
    assert "Traceback" not in result.output
    return result


def dashboard_job(mock: RunningMock, prompt: str) -> str | None:
    """The job id the relay's dashboard shows for ``prompt``, if any."""
    found = [job_id for job_id, job in mock.state.jobs.items() if job["prompt"] == prompt]
    assert len(found) <= 1
    return found[0] if found else None


def test_adopting_the_job_from_the_dashboard_follows_it_and_buys_nothing(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    manifest, mock, results = unresolved_batch(
        tmp_path, invoke, start_mock, "sora-app", Faults(seed=41, html_524=1.0)
    )
    job_id = dashboard_job(mock, "a storm at sea")
    assert job_id is not None and ":" in job_id  # the 524 hid a job made: sora-2:task_…
    result = invoke("resolve", results, "a", "--job-id", job_id)
    assert result.exit_code == 0, result.output
    assert f"row a adopted job {job_id}" in result.stdout
    assert read_ledger(results)["a"]["job_id"] == job_id

    creates = mock.state.create_requests
    done = run(invoke, manifest, mock, "sora-app", *FOLLOW)
    assert done.exit_code == 0, done.output
    assert mock.state.create_requests == creates  # nothing bought again
    states = read_ledger(results)
    assert states["a"]["job_id"] == job_id and states["a"]["status"] == "completed"
    assert mock.state.jobs_created == 2


def test_not_made_sends_the_row_once_on_the_next_run(
    tmp_path: Path, invoke: Invoke, start_mock: Start
) -> None:
    # LiteLLM answers 500 when its upstream call broke midway: maybe made. Here it was not.
    manifest, mock, results = unresolved_batch(
        tmp_path, invoke, start_mock, "litellm", Faults(seed=42, error_500=1.0)
    )
    assert dashboard_job(mock, "a storm at sea") is None
    result = invoke("resolve", results, "a", "--not-made")
    assert result.exit_code == 0, result.output
    assert "row a marked not made" in result.stdout
    assert read_ledger(results)["a"]["status"] == "error"

    creates = mock.state.create_requests
    assert run(invoke, manifest, mock, "litellm").exit_code == 0
    assert mock.state.create_requests == creates + 1
    assert dashboard_job(mock, "a storm at sea") == read_ledger(results)["a"]["job_id"]
    assert mock.state.jobs_created == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("zzz", "--not-made"), "no row with key 'zzz' (rows to resolve: a)"),
        (("b", "--not-made"), "row b already has job"),
        (("a",), "give exactly one of --job-id ID or --not-made"),
        (("a", "--not-made", "--job-id", "task_x"), "give exactly one of"),
        (("a", "--job-id", "task x"), "not a job id"),
        (("a", "--job-id", "OWNED"), "is already row b's"),
    ],
    ids=["unknown-key", "has-a-job", "neither", "both", "malformed-id", "another-rows-job"],
)
def test_what_cannot_be_resolved_is_refused_and_nothing_is_recorded(
    tmp_path: Path, invoke: Invoke, start_mock: Start, args: tuple[str, ...], message: str
) -> None:
    _, _, results = unresolved_batch(
        tmp_path, invoke, start_mock, "new-api", Faults(seed=43, html_524=1.0)
    )
    owned = read_ledger(results)["b"]["job_id"]
    before = results.read_bytes()
    result = invoke("resolve", results, *[owned if a == "OWNED" else a for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert results.read_bytes() == before
