"""Remixes whose source row will never complete: recorded with the source's reason, exit 1,
and sent once the source is fixed. Through the real CLI against the simulated API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchgen.mock import Faults, MockConfig, RunningMock
from tests.helpers import FAST, FOLLOW, Invoke, results, write

BLOCKED = "Your request was blocked by our moderation system."


def remix_manifest(tmp_path: Path, source_id: str, source_prompt: str) -> Path:
    """A source row and a remix of it (the remix listed first, as users do)."""
    return write(
        tmp_path / "m.yaml",
        f"rows:\n  - {{id: jazz, remix_of: {source_id}, prompt: The cat plays jazz}}\n"
        f"  - {{id: {source_id}, prompt: '{source_prompt}'}}\n",
    )


def test_a_remix_whose_source_fails_is_rejected_with_its_reason_then_sent_once_fixed(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = remix_manifest(tmp_path, "cat", "A cat [fail]")  # moderation fails the job
    run = ("run", manifest, "--base-url", mock_api.base_url, *FAST, *FOLLOW)
    first = invoke(*run)
    assert first.exit_code == 1, first.output
    jazz = results(manifest)["jazz"]
    assert jazz["status"] == "rejected" and jazz["error_code"] == "source_failed"
    assert jazz["error_message"] == f"its source row cat ended failed: {BLOCKED}"
    assert mock_api.state.create_requests == 1  # the remix was not sent

    # the fix: a new id for the source (its failed job stays its own), then --retry-rejected
    remix_manifest(tmp_path, "cat2", "A cat")
    dry = invoke("run", manifest, "--dry-run")
    assert "rejected earlier (fix it, then --retry-rejected)" in dry.stdout
    fixed = invoke(*run, "--retry-rejected")
    assert fixed.exit_code == 0, fixed.output
    states = results(manifest)
    assert states["jazz"]["status"] == "completed"
    remix = mock_api.state.jobs[states["jazz"]["job_id"]]
    assert remix["remixed_from_video_id"] == states["cat2"]["job_id"]


def test_a_source_that_failed_in_an_earlier_run_is_the_remixs_reason_at_once(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = remix_manifest(tmp_path, "cat", "A cat [fail]")
    url = ("--base-url", mock_api.base_url)
    assert invoke("run", manifest, *url, *FAST).exit_code == 0  # the remix waits for a rerun
    poll = invoke("poll", manifest.with_name("m.results.csv"), *url, *FOLLOW)
    assert poll.exit_code == 1  # the source failed
    dry = invoke("run", manifest, *url, "--dry-run")
    assert "its source row cat ended failed" in dry.stdout
    again = invoke("run", manifest, *url, *FAST)
    assert again.exit_code == 1, again.output
    assert (
        results(manifest)["jazz"]["error_message"] == f"its source row cat ended failed: {BLOCKED}"
    )
    assert mock_api.state.create_requests == 1


def test_a_source_that_gave_up_for_now_makes_the_remix_an_error_retried_with_it(
    tmp_path: Path, invoke: Invoke, start_mock: Callable[..., RunningMock]
) -> None:
    down = start_mock(MockConfig(faults=Faults(seed=1, error_503=1.0)))
    manifest = remix_manifest(tmp_path, "cat", "A cat")
    run = ("run", manifest, *FAST, *FOLLOW, "--max-attempts", "2")
    first = invoke(*run, "--base-url", down.base_url)
    assert first.exit_code == 1, first.output
    jazz = results(manifest)["jazz"]
    assert (jazz["status"], jazz["error_code"]) == ("error", "source_error")
    assert jazz["error_message"].startswith("its source row cat ended error: ")
    assert down.state.jobs_created == 0

    healthy = start_mock()
    again = invoke(*run, "--base-url", healthy.base_url)  # no flag needed: errors are retried
    assert again.exit_code == 0, again.output
    states = results(manifest)
    assert (states["cat"]["status"], states["jazz"]["status"]) == ("completed", "completed")
    remix = healthy.state.jobs[states["jazz"]["job_id"]]
    assert remix["remixed_from_video_id"] == states["cat"]["job_id"]
