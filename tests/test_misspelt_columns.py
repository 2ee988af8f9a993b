"""A misspelt column never costs money, and a team's own columns keep working.

Through the real CLI, against the simulated API on 127.0.0.1: a column name close to one
batchgen understands stops ``validate`` and ``run`` (exit 2, nothing sent, no results
file) with one message per column; declaring it (``passthrough:``), mapping it
(``columns:``) or using it in a ``prompt_template`` makes it the team's own; columns that
are not near misses are carried into the results as before.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from batchgen.mock import RunningMock
from tests.bad_input_cases import CASES, check_refused
from tests.helpers import FAST, Invoke, results, write_csv


def sent(mock: RunningMock) -> list[tuple[str, str, str]]:
    """(prompt, model, seconds) of every job the simulated API made, by prompt."""
    jobs = mock.state.jobs.values()
    return sorted((str(j["prompt"]), str(j["model"]), str(j["seconds"])) for j in jobs)


def typo_sheet(folder: Path, rows: int = 5) -> Path:
    body = [[f"r{n}", f"shot {n}", "8", "sora-2-pro"] for n in range(rows)]
    return write_csv(folder / "night.csv", [["id", "prompt", "sceonds", "Modle"], *body])


@pytest.mark.timeout(60)
def test_each_misspelt_column_is_one_message_whatever_the_rows(
    tmp_path: Path, invoke: Invoke
) -> None:
    result = invoke("validate", typo_sheet(tmp_path, rows=50))
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert [line for line in lines if ": sceonds: " in line] == [
        f"{tmp_path / 'night.csv'}:1: sceonds: unknown column, probably meant 'seconds': "
        "rename it seconds (if it is a column of your own, declare it in a YAML manifest: "
        "passthrough: [sceonds])"
    ]
    assert [line for line in lines if ": modle: " in line] != []
    assert lines[-1] == "batchgen: 2 problem(s); nothing was sent"
    assert "Traceback" not in result.output


@pytest.mark.timeout(60)
def test_skip_invalid_does_not_step_over_a_misspelt_column(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = typo_sheet(tmp_path)
    result = invoke("run", manifest, "--base-url", mock_api.base_url, "--skip-invalid", *FAST)
    assert result.exit_code == 2, result.output
    assert "sceonds: unknown column, probably meant 'seconds'" in result.stderr
    assert mock_api.state.create_requests == 0
    assert not list(tmp_path.glob("*.results.csv"))


@pytest.mark.timeout(60)
def test_a_misspelt_header_in_a_workbook_names_the_header_row(
    tmp_path: Path, invoke: Invoke
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Prompt", "Resolution", "Campaign"])
    sheet.append(["a lighthouse in a storm", "1280x720", "autumn"])
    workbook.save(tmp_path / "night.xlsx")
    result = invoke("validate", tmp_path / "night.xlsx")
    assert result.exit_code == 2, result.output
    assert "night.xlsx:1: resolution: unknown column, probably meant 'size'" in result.stderr


#: Each manifest has rows "a" (the team's column set) and "b" (not set).
OWN = {
    "declared": "passthrough: [modle, sceonds]\n"
    "rows:\n  - {id: a, prompt: A cat, modle: v2, sceonds: x}\n  - {id: b, prompt: A dog}\n",
    "mapped to its own name": "columns: {Modle: modle, sceonds: sceonds}\n"
    "rows:\n  - {id: a, prompt: A cat, Modle: v2, sceonds: x}\n  - {id: b, prompt: A dog}\n",
    "used by the template": "prompt_template: '{promt} ({modle}, {sceonds})'\n"
    "rows:\n  - {id: a, promt: A cat, modle: v2, sceonds: x}\n"
    "  - {id: b, promt: A dog, modle: v1, sceonds: y}\n",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", OWN)
def test_a_declared_mapped_or_templated_column_is_the_teams_own(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, how: str
) -> None:
    manifest = tmp_path / "own.yaml"
    manifest.write_text(OWN[how], encoding="utf-8")
    assert invoke("validate", manifest).exit_code == 0
    result = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    assert [(model, seconds) for _, model, seconds in sent(mock_api)] == [("sora-2", "4")] * 2
    row = results(manifest)["a"]
    assert (row["modle"], row["sceonds"]) == ("v2", "x")  # carried through, as the team's


@pytest.mark.timeout(60)
def test_a_misspelt_header_mapped_to_the_column_is_that_column(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    write_csv(tmp_path / "sheet.csv", [["id", "Promt", "Sceonds"], ["a", "A cat", "8"]])
    manifest = tmp_path / "night.yaml"
    manifest.write_text("source: sheet.csv\ncolumns: {Promt: prompt, Sceonds: seconds}\n")
    result = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    assert sent(mock_api) == [("A cat", "sora-2", "8")]


@pytest.mark.timeout(60)
def test_a_teams_usual_columns_are_carried_through_as_before(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    header = ["id", "prompt", "campaign", "owner", "notes", "tags", "time", "mode", "take"]
    values = ["a", "A cat", "autumn", "mia", "reshoot", "cats", "dusk", "slow", "3"]
    manifest = write_csv(tmp_path / "night.csv", [header, values])
    result = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    assert sent(mock_api) == [("A cat", "sora-2", "4")]
    row = results(manifest)["a"]
    assert [row[name] for name in header[2:]] == values[2:]
    with (tmp_path / "night.results.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert set(header) - {"id"} <= set(next(csv.reader(handle)))


NEW_CASES = [
    "misspelt-header",
    "synonym-header",
    "misspelt-yaml-key",
    "misspelt-default",
    "no-prompt-column",
    "batchgens-own-columns",
    "id-equal-to-a-take-key",
    "id-equal-to-a-content-key",
    "lone-surrogate-prompt",
    "lone-surrogate-cell",
    "lone-surrogate-column",
    "remix-cycle",
    "remix-cycle-of-three",
    "remix-of-nothing",
    "remix-of-a-misspelt-id",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", NEW_CASES)
def test_run_mock_refuses_it_and_writes_no_results(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The cases of tests/test_bad_input.py this change added, through ``run --mock`` too."""
    folder = tmp_path / "batch"
    folder.mkdir()
    manifest = CASES[name].build(folder)
    monkeypatch.chdir(folder)
    result = invoke("run", manifest.name, "--mock", *FAST)
    check_refused(result.exit_code, result.stdout, result.stderr, CASES[name], folder)
