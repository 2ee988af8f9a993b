"""``run --dry-run --list``: one line per row (row, id, action, cost, what is sent, why)."""

from __future__ import annotations

import re
from pathlib import Path

from batchgen.mock import RunningMock
from tests.helpers import FAST, Invoke, write_csv

HEADER = ["id", "prompt", "model", "size", "seconds", "campaign"]


def manifest(tmp_path: Path) -> Path:
    """Four rows at known prices: $0.40, $2.40, $0.80, $1.20 (the openai profile)."""
    return write_csv(
        tmp_path / "night.csv",
        [
            HEADER,
            ["a-1", "A paper boat on a rainy street", "sora-2", "720x1280", "4", "x"],
            ["a-2", "Sunset over hills\nslow push-in", "sora-2-pro", "1280x720", "8", "x"],
            ["a-3", "A lighthouse in a storm " * 5, "sora-2", "1280x720", "8", "x"],
            ["a-4", "A cat kneading dough", "sora-2", "720x1280", "12", "x"],
        ],
    )


def listing(stdout: str) -> dict[str, list[str]]:
    """The listed rows by id: each line split on its column gaps."""
    lines = stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["row", "id", "action", "cost", "sends", "why"]
    rows = {}
    for line in lines[1:]:
        if not line[:1].isdigit():
            break  # the plan's summary follows the listing
        cells = re.split(r"\s{2,}", line)
        rows[cells[1]] = cells
    return rows


def test_lists_every_row_with_what_it_sends_costs_and_why(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = manifest(tmp_path)
    url = ("--base-url", mock_api.base_url)
    assert invoke("run", path, *url, *FAST, "--limit", "1").exit_code == 0

    result = invoke("run", path, *url, "--dry-run", "--list", "--max-cost", "3.7")
    assert result.exit_code == 0, result.output
    rows = listing(result.stdout)
    assert rows["a-1"] == ["2", "a-1", "skip", "-", rows["a-1"][4], "already submitted"]
    assert rows["a-2"][:4] == ["3", "a-2", "send", "$2.40"]
    assert rows["a-2"][4] == 'sora-2-pro 1280x720 8s "Sunset over hills slow push-in"'
    assert rows["a-2"][5] == "new row"
    assert rows["a-3"][:4] == ["4", "a-3", "send", "$0.80"]
    assert rows["a-3"][4].endswith('"A lighthouse in a storm A lighthouse in…"')
    assert rows["a-4"][:4] == ["5", "a-4", "skip", "-"]
    assert rows["a-4"][5] == "over budget (--max-cost/--max-jobs)"
    # the rows to send add up to the plan's estimate, which follows the listing
    assert "estimated cost: $3.20" in result.stdout
    assert "nothing was sent" in result.stdout
    assert mock_api.state.create_requests == 1


def test_invalid_rows_are_listed_with_their_problem(tmp_path: Path, invoke: Invoke) -> None:
    path = write_csv(
        tmp_path / "night.csv",
        [HEADER, ["b-1", "Fine", "sora-2", "720x1280", "4", ""], ["b-2", "Bad", "", "", "7", ""]],
    )
    result = invoke("run", path, "--mock", "--dry-run", "--list", "--skip-invalid")
    assert result.exit_code == 0, result.output
    rows = listing(result.stdout)
    assert rows["b-1"][:4] == ["2", "b-1", "send", "$0.40"]
    assert rows["b-2"][:5] == ["3", "b-2", "invalid", "-", "-"]
    assert "seconds" in rows["b-2"][5]


def test_list_without_dry_run_is_refused_and_sends_nothing(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    result = invoke("run", manifest(tmp_path), "--base-url", mock_api.base_url, "--list")
    assert result.exit_code == 2
    assert "--list shows a dry run's rows: add --dry-run" in result.stderr
    assert mock_api.state.create_requests == 0
    assert not (tmp_path / "night.results.csv").exists()
