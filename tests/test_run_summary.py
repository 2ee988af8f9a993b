"""The end of ``batchgen run``: the first rows needing attention (row, id, status, reason),
what to do about each and the command that moves them on; ``--summary-json`` has them too."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import FAST, FOLLOW, Invoke, write_csv

StartMock = Callable[..., RunningMock]


def test_the_end_of_a_run_lists_each_row_needing_attention_and_what_to_run(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    # validated against the relay profile; the official API behind it refuses 15 s
    mock = start_mock(MockConfig(profile=load_profile("openai")))
    rows = [
        ["id", "prompt", "seconds"],
        ["ok", "a calm sea", "4"],
        ["long", "too long for it", "15"],
        ["bad", "[fail] a prompt moderation blocks", "4"],
        ["odd", "seven seconds", "7"],
    ]
    path = write_csv(tmp_path / "night.csv", rows)
    result = invoke(
        "run", path, "--base-url", mock.base_url, "--profile", "relay", "--skip-invalid",
        *FAST, *FOLLOW, "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "needs attention: 3 rows" in out
    tail = out[out.index("needs attention") :].splitlines()
    assert tail[1].split()[:4] == ["row", "3", "long", "rejected"]
    assert "Invalid value: '15'" in tail[1]
    assert "rerun with --retry-rejected" in tail[2]
    assert tail[3].split()[:4] == ["row", "4", "bad", "failed"] and "moderation" in tail[3]
    assert "rewrite it" in tail[4]
    assert tail[5].split()[:4] == ["row", "5", "odd", "invalid"] and "seconds" in tail[5]
    assert tail[7:] == [
        "next:",
        f"  batchgen run {path} --retry-rejected",
        f"  batchgen run {path}",
    ]


def test_an_unresolved_row_names_the_resolve_command_that_settles_it(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    # the create's answer is lost and this provider cannot list: only a person can tell
    faults = Faults(seed=7, reset_after_create=1.0)
    mock = start_mock(MockConfig(faults=faults, idempotency=False, listing=False))
    path = write_csv(tmp_path / "night.csv", [["id", "prompt"], ["r1", "a calm sea"]])
    result = invoke("run", path, "--base-url", mock.base_url, *FAST)
    assert result.exit_code == 1
    results = tmp_path / "night.results.csv"
    command = f"batchgen resolve {results} r1 --job-id ID"
    assert f"  {command}" in result.stdout.splitlines()
    assert "--not-made" in result.stdout  # the other answer the dashboard may give
    # the command as printed, with the id the provider's dashboard shows, settles the row
    [job_id] = mock.state.jobs
    args = shlex.split(command.replace("--job-id ID", f"--job-id {job_id}"))
    settled = invoke(*args[1:])
    assert settled.exit_code == 0, settled.output
    assert read_ledger(results)["r1"]["job_id"] == job_id


def test_summary_json_has_the_first_ten_rows_needing_attention(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    rows = [["id", "prompt", "seconds"], ["ok", "a calm sea", "4"]]
    rows += [[f"x{n:02}", f"prompt {n}", "7"] for n in range(12)]
    path = write_csv(tmp_path / "night.csv", rows)
    summary = tmp_path / "last-run.json"
    result = invoke(
        "run", path, "--base-url", mock_api.base_url, "--skip-invalid", *FAST,
        "--summary-json", summary,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "needs attention: 12 rows (the first 10 shown)" in result.stdout
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["attention_total"] == 12
    assert [a["row"] for a in data["attention"]] == list(range(3, 13))
    first = data["attention"][0]
    assert first["id"] == "x00" and first["status"] == "invalid"
    assert "seconds" in first["reason"] and "--retry-rejected" in first["next_step"]
    assert first["command"] == f"batchgen run {path} --retry-rejected"


def test_a_run_with_nothing_to_look_at_says_nothing_more(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = write_csv(tmp_path / "night.csv", [["id", "prompt"], ["a", "a calm sea"]])
    summary = tmp_path / "last-run.json"
    result = invoke("run", path, "--base-url", mock_api.base_url, *FAST, "--summary-json", summary)
    assert result.exit_code == 0
    assert "needs attention" not in result.stdout and "next:" not in result.stdout
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["attention_total"] == 0 and data["attention"] == []
