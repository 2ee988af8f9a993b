"""Everything a run will write is proved writable before the first create.

The folder under test is really read-only: a read-only tmpfs mount where the machine allows
it (root, as in CI), else a folder without write permission (a user who is not root).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchgen.mock import RunningMock
from tests.helpers import Invoke, write_csv

FAST = ("--rpm", "100000", "--backoff", "0.01", "--max-attempts", "2")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """An existing folder that refuses new files, as a read-only mount does."""
    folder = tmp_path / "mounted"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True, timeout=30).returncode != 0:
        pytest.skip("root without the right to mount: cannot make a read-only folder")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)


def night(folder: Path) -> Path:
    return write_csv(folder / "night.csv", [["id", "prompt"], ["a", "A cat"], ["b", "A dog"]])


def test_a_read_only_download_folder_is_refused_before_any_create(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, read_only: Path
) -> None:
    result = invoke(
        "run", night(tmp_path), "--base-url", mock_api.base_url, "--download", read_only
    )
    assert result.exit_code == 2, result.output
    assert f"{read_only}: cannot write the downloaded videos there" in result.stderr
    assert "Traceback" not in result.output
    assert mock_api.state.create_requests == 0


def test_a_summary_that_could_not_be_written_is_refused_before_any_create(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, read_only: Path
) -> None:
    summary = read_only / "last-run.json"
    result = invoke(
        "run", night(tmp_path), "--base-url", mock_api.base_url, "--summary-json", summary
    )
    assert result.exit_code == 2, result.output
    assert "cannot write the summary" in result.stderr
    assert mock_api.state.create_requests == 0


def test_a_results_file_in_a_read_only_folder_is_refused(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, read_only: Path
) -> None:
    out = read_only / "night.results.csv"
    result = invoke("run", night(tmp_path), "--base-url", mock_api.base_url, "--out", out)
    assert result.exit_code == 2, result.output
    assert mock_api.state.create_requests == 0


def test_report_checks_every_output_before_writing_any(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, read_only: Path
) -> None:
    assert invoke("run", night(tmp_path), "--base-url", mock_api.base_url, *FAST).exit_code == 0
    results, csv_out = tmp_path / "night.results.csv", tmp_path / "report.csv"
    result = invoke("report", results, "--csv", csv_out, "--html", read_only / "report.html")
    assert result.exit_code == 2, result.output
    assert "cannot write the report" in result.stderr
    assert not csv_out.exists()
