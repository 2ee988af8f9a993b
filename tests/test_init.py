"""``batchgen init``: a starter folder that validates and runs as written, through the real CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from batchgen.ledger import read_ledger
from batchgen.profile_files import builtin_profile_names, load_profile
from tests.helpers import FAST, Invoke

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib


def sheets(path: Path) -> tuple[Worksheet, Worksheet]:
    """The manifest sheet and the instructions sheet of a starter workbook."""
    workbook = openpyxl.load_workbook(path)
    first, second = workbook.worksheets[:2]
    return first, second


def dropdowns(sheet: Worksheet) -> dict[str, DataValidation]:
    """Each header's list validation, found by the column its range covers."""
    by_letter = {cell.column_letter: str(cell.value) for cell in sheet[1]}
    found = {}
    for rule in sheet.data_validations.dataValidation:
        letter = str(rule.sqref).split(":")[0].rstrip("0123456789")
        found[by_letter[letter]] = rule
    return found


def listed(rule: DataValidation) -> list[str]:
    assert rule.type == "list"
    return str(rule.formula1).strip('"').split(",")


def test_init_then_validate_then_run_mock(tmp_path: Path, invoke: Invoke) -> None:
    folder = tmp_path / "spring"
    made = invoke("init", folder)
    assert made.exit_code == 0, made.output
    manifest = folder / "manifest.xlsx"
    assert (folder / "images").is_dir()

    checked = invoke("validate", manifest)
    assert checked.exit_code == 0, checked.output
    assert "3 rows, 3 valid, 0 invalid (profile openai)" in checked.stdout

    ran = invoke("run", manifest, "--mock", *FAST)
    assert ran.exit_code == 0, ran.output
    states = read_ledger(folder / "manifest.results.csv")
    assert sorted(states) == ["example-1", "example-2", "example-3"]
    assert all(state["job_id"] for state in states.values())
    assert {state["campaign"] for state in states.values()} == {"starter"}


@pytest.mark.parametrize("name", builtin_profile_names())
def test_every_profile_starter_validates_as_written(
    name: str, tmp_path: Path, invoke: Invoke
) -> None:
    assert invoke("init", tmp_path / name, "--profile", name).exit_code == 0
    checked = invoke("validate", tmp_path / name / "manifest.xlsx", "--profile", name)
    assert checked.exit_code == 0, checked.output
    assert "3 valid, 0 invalid" in checked.stdout
    assert "warning" not in checked.output


def test_relay_starter_runs_on_the_simulated_relay(tmp_path: Path, invoke: Invoke) -> None:
    invoke("init", tmp_path, "--profile", "relay")
    ran = invoke("run", tmp_path / "manifest.xlsx", "--profile", "relay", "--mock", *FAST)
    assert ran.exit_code == 0, ran.output
    states = read_ledger(tmp_path / "manifest.results.csv")
    assert states["example-1"]["style"] == "thanksgiving"
    assert all(state["job_id"].startswith("task_") for state in states.values())


def test_dropdowns_come_from_the_profile(tmp_path: Path, invoke: Invoke) -> None:
    invoke("init", tmp_path, "--profile", "relay")
    relay = load_profile("relay")
    sheet, _ = sheets(tmp_path / "manifest.xlsx")
    rules = dropdowns(sheet)
    assert listed(rules["model"]) == list(relay.models)
    assert listed(rules["size"]) == list(relay.all_sizes)
    assert listed(rules["seconds"]) == ["4", "8", "10", "12", "15"]
    assert listed(rules["style"]) == [
        "thanksgiving",
        "comic",
        "news",
        "selfie",
        "nostalgic",
        "anime",
    ]
    assert listed(rules["watermark"]) == listed(rules["private"]) == ["true", "false"]
    assert set(rules) == {"model", "size", "seconds", "style", "watermark", "private"}
    for rule in rules.values():
        assert rule.allow_blank  # blank means the profile's default
        assert str(rule.sqref).endswith("1001")  # well below the examples


def test_a_relay_that_takes_other_models_warns_instead_of_refusing(
    tmp_path: Path, invoke: Invoke
) -> None:
    invoke("init", tmp_path / "new-api", "--profile", "new-api")
    invoke("init", tmp_path / "openai")
    relay, _ = sheets(tmp_path / "new-api" / "manifest.xlsx")
    official, _ = sheets(tmp_path / "openai" / "manifest.xlsx")
    assert dropdowns(relay)["model"].errorStyle == "warning"
    assert dropdowns(official)["model"].errorStyle == "stop"
    assert "style" not in dropdowns(official)


def test_header_is_frozen_bold_and_readable_and_instructions_follow(
    tmp_path: Path, invoke: Invoke
) -> None:
    invoke("init", tmp_path, "--profile", "relay")
    sheet, help_sheet = sheets(tmp_path / "manifest.xlsx")
    header = [cell.value for cell in sheet[1]]
    assert header[:6] == ["id", "prompt", "image", "model", "size", "seconds"]
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.b for cell in sheet[1])
    assert (sheet.column_dimensions["B"].width or 0) >= 60  # the prompt column
    assert help_sheet.title == "instructions"
    text = "\n".join(str(row[0]) for row in help_sheet.iter_rows(values_only=True))
    for column in header:
        assert f"  {column}" in text
    assert "comic" in text and "batchgen validate manifest.xlsx" in text
    assert "--dry-run --list" in text and "--mock" in text


def test_config_file_parses_and_holds_no_address_or_key(tmp_path: Path, invoke: Invoke) -> None:
    invoke("init", tmp_path, "--profile", "relay")
    text = (tmp_path / "batchgen.toml").read_text(encoding="utf-8")
    assert tomllib.loads(text) == {"profile": "relay"}  # every other setting commented out
    for key in ("rpm", "concurrency", "poll_interval", "poll_rpm", "timeout", "download", "output"):
        assert f"# {key} = " in text
    assert "base_url =" not in text and "api_key" not in text


def test_a_profile_file_is_named_so_the_config_still_finds_it(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ours.yaml").write_text("extends: relay\nname: ours\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert invoke("init", "batch", "--profile", "ours.yaml").exit_code == 0
    config = tomllib.loads((tmp_path / "batch" / "batchgen.toml").read_text(encoding="utf-8"))
    assert config["profile"] == str(tmp_path / "ours.yaml")


def test_refuses_to_overwrite_a_manifest_but_not_a_folder(tmp_path: Path, invoke: Invoke) -> None:
    (tmp_path / "notes.txt").write_text("ours", encoding="utf-8")
    assert invoke("init", tmp_path).exit_code == 0  # an existing folder is fine
    manifest, config = tmp_path / "manifest.xlsx", tmp_path / "batchgen.toml"
    config.write_text('profile = "new-api"\n', encoding="utf-8")
    before = manifest.read_bytes()

    again = invoke("init", tmp_path)
    assert again.exit_code == 2
    assert f"{manifest}: already exists; not overwritten" in again.stderr
    assert "Traceback" not in again.output
    assert manifest.read_bytes() == before
    assert config.read_text(encoding="utf-8") == 'profile = "new-api"\n'
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "ours"


def test_keeps_a_config_file_the_team_already_has(tmp_path: Path, invoke: Invoke) -> None:
    (tmp_path / "batchgen.toml").write_text("rpm = 10\n", encoding="utf-8")
    made = invoke("init", tmp_path)
    assert made.exit_code == 0
    assert "kept the existing batchgen.toml" in made.stdout
    assert (tmp_path / "batchgen.toml").read_text(encoding="utf-8") == "rpm = 10\n"


def test_bad_folder_or_profile_is_a_clear_exit_2(tmp_path: Path, invoke: Invoke) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    on_a_file = invoke("init", tmp_path / "file")
    assert on_a_file.exit_code == 2
    assert "Traceback" not in on_a_file.output
    unknown = invoke("init", tmp_path / "new", "--profile", "nonesuch")
    assert unknown.exit_code == 2
    assert "nonesuch" in unknown.stderr
    assert not (tmp_path / "new" / "manifest.xlsx").exists()


def test_the_starter_config_carries_the_profile_to_validate_and_run(
    tmp_path: Path, invoke: Invoke
) -> None:
    invoke("init", tmp_path, "--profile", "relay")
    manifest = tmp_path / "manifest.xlsx"
    checked = invoke("validate", manifest)  # no --profile: batchgen.toml beside it says relay
    assert checked.exit_code == 0, checked.output
    assert "3 valid, 0 invalid (profile relay)" in checked.stdout
    listed = invoke("run", manifest, "--mock", "--dry-run", "--list")
    assert listed.exit_code == 0, listed.output
    assert "style=thanksgiving" in listed.stdout
