"""The results ledger: durable appends, latest state per key, torn lines, the lock."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from batchgen.columns import FIXED_COLUMNS
from batchgen.errors import LedgerError, LockHeldError
from batchgen.ledger import Ledger, read_ledger
from batchgen.seal import Digest, load_seal, save_seal


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
    with pytest.raises(LedgerError, match="line 3: not a whole results line"):
        Ledger.open(path)
    assert path.read_bytes() == before  # nothing truncated


def test_cells_longer_than_csvs_default_limit_are_read_and_nothing_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    long = "p" * 300_000  # csv refuses cells over 131,072 characters unless told otherwise
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "queued", "job_id": "video_1", "prompt": long})
        ledger.record("b", {"status": "queued", "job_id": "video_2"})
    size = path.stat().st_size
    with Ledger.open(path) as ledger:
        assert ledger.states["a"]["prompt"] == long
        assert set(ledger.states) == {"a", "b"}
    assert path.stat().st_size == size


def test_a_bad_last_line_ending_in_a_newline_is_an_error_not_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "queued", "job_id": "video_1"})
    with path.open("ab") as f:
        f.write(b"b,3,,queued\r\n")  # whole, but not one of batchgen's lines
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="line 3: not a whole results line"):
        Ledger.open(path)
    assert path.read_bytes() == before


def test_a_line_torn_inside_a_quoted_cell_right_after_a_newline_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "queued", "job_id": "video_1"})
    with path.open("ab") as f:
        f.write(b'c,4,,submitting,,,,,,,,"a prompt over\r\n')  # the crash hit mid-cell
    with Ledger.open(path) as ledger:
        assert set(ledger.states) == {"a"}


def test_the_seal_covers_every_byte_written_once_closed(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "submitting"}, durable=True)
        ledger.record("a", {"status": "queued", "job_id": "video_1"})
    sealed = load_seal(path)
    assert sealed is not None
    assert sealed.length == path.stat().st_size
    assert sealed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("through", ["file", "folder"])
def test_a_symlink_to_the_file_or_its_folder_meets_the_same_lock(
    tmp_path: Path, through: str
) -> None:
    real = tmp_path / "data" / "r.csv"
    real.parent.mkdir()
    if through == "file":
        link = tmp_path / "link.csv"
        link.symlink_to(real)
    else:
        (tmp_path / "alias").symlink_to(real.parent, target_is_directory=True)
        link = tmp_path / "alias" / "r.csv"
    with Ledger.open(real), pytest.raises(LockHeldError) as caught:
        Ledger.open(link)
    assert caught.value.exit_code == 3
    with Ledger.open(link) as ledger:  # the same file, once free
        ledger.record("a", {"status": "queued"})
    assert set(read_ledger(real)) == {"a"}


def test_a_resume_reads_every_rows_latest_state_in_first_seen_order(tmp_path: Path) -> None:
    """Many rows, each written twice, in a pattern no sampling could be aligned with: what
    a resume reads back is exactly what was last recorded for each row, every column of it."""
    path = tmp_path / "r.csv"
    statuses = ["queued", "in_progress", "failed", "completed", "rejected"]
    written: dict[str, dict[str, str]] = {}
    with Ledger.open(path, passthrough=["campaign"]) as ledger:
        for n in range(500):
            ledger.record(f"k{n}", {"status": "submitting", "campaign": f"c{n % 7}"})
        for n in reversed(range(500)):
            changes = {"status": statuses[n % 5], "job_id": f"video_{n}", "progress": str(n)}
            state = ledger.record(f"k{n}", changes)
            written[f"k{n}"] = {column: state.get(column, "") for column in ledger.header}
    states = read_ledger(path)
    assert list(states) == [f"k{n}" for n in range(500)]  # the order rows were first seen
    assert {key: dict(state) for key, state in states.items()} == written
    assert states["k3"] == written["k3"]
    assert states["k3"].get("no such column") is None
    assert "no such column" not in states["k3"]


def test_a_sealed_file_with_a_line_batchgen_never_writes_is_still_an_error(tmp_path: Path) -> None:
    # A file the seal covers to its last byte is read in bulk; a line of the wrong length
    # there (a bug, never an edit: the seal would say) still gets its line-numbered error.
    path = tmp_path / "r.csv"
    with Ledger.open(path) as ledger:
        ledger.record("a", {"status": "submitting"})
    with path.open("ab") as handle:
        handle.write(b"b,too,few\r\n")
    sealed = load_seal(path)
    assert sealed is not None
    digest = Digest()
    digest.update(path.read_bytes())
    save_seal(path, digest.seal(sealed.header))
    with pytest.raises(LedgerError, match=r"line 3: .*3 cells"):
        read_ledger(path)
