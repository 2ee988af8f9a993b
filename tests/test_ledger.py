"""The results ledger: durable appends, latest state per key, torn lines, the lock."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from batchgen.errors import LedgerError, LockHeldError
from batchgen.ledger import FIXED_COLUMNS, Ledger, read_ledger


def test_new_file_has_bom_fixed_columns_then_passthrough(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path, passthrough=["campaign", "owner"]) as ledger:
        ledger.record("a", {"status": "submitting", "prompt": "x", "campaign": "autumn"})
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    assert header == [*FIXED_COLUMNS, "campaign", "owner"]


def test_last_line_of_a_key_is_its_state_and_snapshots_are_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "submitting", "prompt": 'multi\nline, "quoted"'})
        ledger.record("b", {"status": "submitting"})
        ledger.record("a", {"status": "queued", "job_id": "video_1"})
    states = read_ledger(path)
    assert states["a"]["status"] == "queued"
    assert states["a"]["job_id"] == "video_1"
    assert states["a"]["prompt"] == 'multi\nline, "quoted"'
    assert states["b"]["status"] == "submitting"


def test_prompt_with_unicode_line_separator_survives(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "queued", "prompt": "one\u2028two"})
        ledger.record("b", {"status": "queued"})
    assert read_ledger(path)["a"]["prompt"] == "one\u2028two"
    assert set(read_ledger(path)) == {"a", "b"}


@pytest.mark.parametrize("tear", [b"b,3,,queu", b'c,4,,submitting,,,,,,,,"unterminated\nprompt'])
def test_torn_last_line_is_dropped_and_appends_continue(tmp_path: Path, tear: bytes) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "queued", "job_id": "video_1"})
    with path.open("ab") as f:
        f.write(tear)
    assert set(read_ledger(path)) == {"a"}
    with Ledger.open(path) as ledger:
        assert set(ledger.states) == {"a"}
        ledger.record("d", {"status": "queued"})
    assert set(read_ledger(path)) == {"a", "d"}
    assert tear not in path.read_bytes()


def test_second_open_is_refused_with_the_lock_named(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path), pytest.raises(LockHeldError) as caught:
        Ledger.open(path)
    assert "r.csv.lock" in str(caught.value)
    assert caught.value.exit_code == 3
    Ledger.open(path).close()  # released when the first run ends


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger.open(tmp_path / "nope" / "r.csv")


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("name,age\nbob,3\n", encoding="utf-8")
    with pytest.raises(LedgerError, match="not a batchgen results file"):
        Ledger.open(path)


def test_a_bad_line_in_the_middle_is_an_error_not_a_silent_truncation(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "queued", "job_id": "video_1"})
    whole_line = path.read_bytes().splitlines(keepends=True)[-1]
    with path.open("ab") as f:
        f.write(b"an,edited,line\r\n" + whole_line)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="record 3 is not a whole results line"):
        Ledger.open(path)
    assert path.read_bytes() == before  # nothing truncated
