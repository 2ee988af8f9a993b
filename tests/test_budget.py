"""Costs known before they are spent: estimates, --max-cost and --max-jobs across resumes,
and the files cron monitoring reads (--summary-json, --log-file)."""

from __future__ import annotations

import json
from pathlib import Path

from batchgen.ledger import read_ledger
from batchgen.mock import RunningMock
from tests.helpers import FAST, Invoke, write_csv


def five_rows(tmp_path: Path) -> Path:
    """Five 4-second sora-2 rows: $0.40 each at OpenAI's published $0.10/s."""
    rows = [["id", "prompt"]] + [[f"r{n}", f"prompt {n}"] for n in range(1, 6)]
    return write_csv(tmp_path / "m.csv", rows)


def statuses(tmp_path: Path) -> dict[str, str]:
    return {k: s["status"] for k, s in read_ledger(tmp_path / "m.results.csv").items()}


def test_max_cost_holds_across_resumed_runs(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path, url = five_rows(tmp_path), mock_api.base_url
    first = invoke("run", path, "--base-url", url, *FAST, "--max-cost", "1.00")
    assert first.exit_code == 0, first.output
    assert statuses(tmp_path) == {
        "r1": "queued",
        "r2": "queued",
        "r3": "skipped_budget",
        "r4": "skipped_budget",
        "r5": "skipped_budget",
    }
    assert "estimated cost: $0.80 this run, $0.80 for all rows" in first.stdout
    again = invoke("run", path, "--base-url", url, *FAST, "--max-cost", "1.00")
    assert again.exit_code == 0 and mock_api.state.jobs_created == 2  # earlier spend counts
    raised = invoke("run", path, "--base-url", url, *FAST, "--max-cost", "2.00")
    assert raised.exit_code == 0
    assert mock_api.state.jobs_created == 5  # $2.00 exactly fits
    assert set(statuses(tmp_path).values()) == {"queued"}


def test_max_jobs_caps_creates_over_every_run(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path, url = five_rows(tmp_path), mock_api.base_url
    invoke("run", path, "--base-url", url, *FAST, "--max-jobs", "2")
    invoke("run", path, "--base-url", url, *FAST, "--max-jobs", "3")
    assert mock_api.state.jobs_created == 3
    assert list(statuses(tmp_path).values()).count("skipped_budget") == 2


def test_dry_run_and_validate_estimate_the_cost(tmp_path: Path, invoke: Invoke) -> None:
    path = five_rows(tmp_path)
    assert "estimated cost: $2.00" in invoke("run", path, "--dry-run").stdout
    assert "estimated cost if all are sent: $2.00" in invoke("validate", path).stdout
    assert "estimated cost: $0.80" in invoke("run", path, "--dry-run", "--max-cost", "1").stdout


def test_max_cost_without_prices_is_refused_before_sending(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = five_rows(tmp_path)
    result = invoke(
        "run", path, "--base-url", mock_api.base_url, "--profile", "relay", "--max-cost", "5"
    )
    assert result.exit_code == 2
    assert "no price" in result.stderr
    assert mock_api.state.create_requests == 0


def test_summary_json_and_log_file_for_cron(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = five_rows(tmp_path)
    summary, log = tmp_path / "summary.json", tmp_path / "run.log"
    result = invoke(
        "run",
        path,
        "--base-url",
        mock_api.base_url,
        *FAST,
        "--no-progress",
        "--summary-json",
        summary,
        "--log-file",
        log,
    )
    assert result.exit_code == 0
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["exit_code"] == 0
    assert data["rows"] == {"queued": 5}
    assert data["estimated_cost_usd"] == {"this_run": 2.0, "all_rows": 2.0}
    assert data["seconds_of_video_sent"] == 20
    assert data["duration_seconds"] >= 0
    assert "submit: 5/5 (100%)" in log.read_text(encoding="utf-8")


def test_summary_json_records_a_run_that_stopped_before_sending(
    tmp_path: Path, invoke: Invoke
) -> None:
    bad = write_csv(tmp_path / "bad.csv", [["id", "prompt"], ["a", ""]])
    summary = tmp_path / "summary.json"
    result = invoke("run", bad, "--mock", "--summary-json", summary)
    assert result.exit_code == 2
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["exit_code"] == 2 and "bad.csv:2: prompt" in data["error"]
