"""Summaries by the team's columns: text, xlsx sheets and ``report --json``, with pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from batchgen.errors import UsageError
from batchgen.profile_files import load_profile
from batchgen.report.groups import default_group_columns, summaries_for, summarise_by
from batchgen.report.summary import load_report, write_xlsx
from batchgen.status import Status
from tests.helpers import Invoke, Row, build_ledger

# seconds: 8 on odd rows, 4 on even ones (tests/helpers.py); openai prices sora-2 at $0.10/s
ANA = {"campaign": "spring", "owner": "ana"}
TEAM_ROWS = (
    Row("s-1", 2, Status.DOWNLOADED, ANA),
    Row("s-2", 3, Status.FAILED, {**ANA, "error_code": "moderation_blocked"}),
    Row("s-3", 4, Status.REJECTED, {**ANA, "owner": "bo", "error_message": "size not allowed"}),
    Row("a-1", 5, Status.COMPLETED, {"campaign": "autumn", "owner": "bo"}),
    Row("b-1", 6, Status.COMPLETED, {"campaign": "", "owner": "bo"}),
    Row("x-1", 7, Status.COMPLETED, {"campaign": "=1+2", "owner": "bo"}),
)
# the statuses present, in the project's order, between the counts and the totals
HEADER = ["campaign", "rows", "completed", "downloaded", "failed", "rejected", "seconds", "cost"]


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A results file of two campaigns, a blank one and a formula-looking one."""
    monkeypatch.chdir(tmp_path)
    return build_ledger(tmp_path, TEAM_ROWS)


def test_by_campaign_counts_statuses_seconds_and_cost_of_rows_with_a_job(results: Path) -> None:
    summary = summarise_by(load_report(results, load_profile("openai")), "campaign")
    assert summary.column == "campaign"
    assert [g.label for g in summary.groups] == ["=1+2", "autumn", "spring", "(blank)"]
    spring = summary.groups[2]
    assert spring.rows == 3
    assert dict(spring.counts) == {"downloaded": 1, "failed": 1, "rejected": 1}
    assert spring.seconds == 4 + 8  # the rejected row has no job: not paid, not counted
    assert spring.cost == pytest.approx(1.20)
    blank = summary.groups[3]
    assert (blank.value, blank.rows, blank.seconds) == ("", 1, 4)


def test_groups_add_up_to_the_report(results: Path) -> None:
    report = load_report(results, load_profile("openai"))
    for summary in summaries_for(report, ("campaign", "owner")):
        assert sum(g.rows for g in summary.groups) == len(report.rows)
        assert sum(g.seconds for g in summary.groups) == report.seconds
        assert sum(g.cost or 0 for g in summary.groups) == pytest.approx(report.cost)


def test_no_prices_means_no_cost(results: Path) -> None:
    for profile in (None, load_profile("relay")):
        groups = summarise_by(load_report(results, profile), "owner").groups
        assert [g.cost for g in groups] == [None, None]


def test_default_columns_are_the_teams_usual_ones_when_present(tmp_path: Path) -> None:
    report = load_report(build_ledger(tmp_path, TEAM_ROWS))
    assert default_group_columns(report) == ("campaign", "owner")
    assert summarise_by(report, "OWNER").column == "owner"  # case does not matter
    assert [g.value for g in summarise_by(report, "model").groups] == ["sora-2"]
    with pytest.raises(UsageError, match="columns there are: campaign, owner, model, size"):
        summarise_by(report, "team")


def test_report_prints_a_table_per_column(invoke: Invoke, results: Path) -> None:
    default = invoke("report", results, "--profile", "openai")
    assert default.exit_code == 0, default.stderr
    assert "by campaign:" in default.stdout and "by owner:" in default.stdout
    table = default.stdout.split("by campaign:")[1].split("by owner:")[0].splitlines()
    assert table[1].split() == HEADER
    assert table[4].split() == ["spring", "3", "0", "1", "1", "1", "12", "$1.20"]
    assert table[5].split()[:2] == ["(blank)", "1"]
    chosen = invoke("report", results, "--by", "model")
    assert "by model:" in chosen.stdout and "by campaign:" not in chosen.stdout


def test_unknown_by_column_is_exit_2_naming_the_columns(invoke: Invoke, results: Path) -> None:
    out = results.parent / "r.json"
    result = invoke("report", results, "--by", "team", "--json", out)
    assert result.exit_code == 2
    assert "--by team: no such column; columns there are: campaign, owner" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_xlsx_has_a_sheet_per_summary(invoke: Invoke, results: Path) -> None:
    out = results.parent / "r.xlsx"
    by = ("--by", "campaign", "--by", "owner")
    result = invoke("report", results, "--profile", "openai", *by, "--xlsx", out)
    assert result.exit_code == 0, result.stderr
    book = load_workbook(out)
    assert book.sheetnames == ["report", "by campaign", "by owner"]
    rows = [[c.value for c in r] for r in book["by campaign"].iter_rows()]
    assert rows[0] == HEADER
    assert rows[1][0] == "'=1+2"  # a campaign named like a formula stays text
    assert rows[3] == ["spring", 3, 0, 1, 1, 1, 12, pytest.approx(1.20)]
    assert not any(c.data_type == "f" for r in book["by campaign"].iter_rows() for c in r)


def test_json_has_counts_cost_attention_with_reasons_and_summaries(
    invoke: Invoke, results: Path
) -> None:
    out = results.parent / "r.json"
    result = invoke("report", results, "--profile", "openai", "--json", out)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["counts"] == {"completed": 3, "downloaded": 1, "failed": 1, "rejected": 1}
    assert (doc["rows"], doc["jobs"], doc["seconds"], doc["cost"]) == (6, 5, 32, 3.2)
    attention = {a["key"]: a for a in doc["attention"]}
    assert set(attention) == {"s-2", "s-3"}
    assert attention["s-3"]["reason"] == "size not allowed"
    assert attention["s-3"]["row"] == 4 and attention["s-3"]["job_id"] is None
    assert attention["s-2"]["next_step"]  # what to do, in words
    assert [s["column"] for s in doc["summaries"]] == ["campaign", "owner"]
    spring = doc["summaries"][0]["groups"][2]
    assert spring == {
        "value": "spring",
        "label": "spring",
        "rows": 3,
        "counts": {"downloaded": 1, "failed": 1, "rejected": 1},
        "seconds": 12,
        "cost": 1.2,
    }


@pytest.mark.parametrize("module", ["batchgen.cli", "batchgen.runner", "batchgen.report.groups"])
def test_run_starts_without_importing_pandas(module: str) -> None:
    code = f"import sys, {module}; print('pandas' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.strip() == "False"


def test_team_values_reach_the_terminal_on_one_line(invoke: Invoke, tmp_path: Path) -> None:
    row = Row("k", 2, Status.COMPLETED, {"campaign": "spring\x1b[31m\nred", "owner": "ana"})
    result = invoke("report", build_ledger(tmp_path, (row,)))
    assert "\x1b" not in result.stdout
    assert "spring [31m red" in result.stdout


def test_two_summaries_of_one_column_get_two_sheets(tmp_path: Path) -> None:
    report = load_report(build_ledger(tmp_path, TEAM_ROWS))
    out = tmp_path / "r.xlsx"
    summary = summarise_by(report, "owner")
    write_xlsx(report, out, [summary, summary])
    assert load_workbook(out).sheetnames == ["report", "by owner", "by owner 2"]
