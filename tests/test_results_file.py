"""The results file cannot be cut, misread or shared through a second door.

Through the real CLI against a provider on 127.0.0.1: long cells are read whole, a
provider's long message is stored as a bounded excerpt, a file another program rewrote is
refused (exit 2, nothing sent) until it is restored or ``batchgen repair``ed, and a
symlink reaches the same lock as the file itself.

Decision recorded here: lines appended after what the seal covers are accepted when they
are whole results lines (a crash leaves exactly that: the seal is updated at most once a
second), unless one would forget a row's job id, which batchgen itself never does.
"""

from __future__ import annotations

import asyncio
import csv
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from batchgen.ledger import Ledger, read_ledger
from batchgen.mock import MockConfig, RunningMock
from batchgen.profile_files import load_profile
from batchgen.seal import load_seal, seal_path
from tests.helpers import Invoke, write_csv

FAST = ("--rpm", "100000", "--backoff", "0.01", "--concurrency", "4", "--no-progress")
LONG_MESSAGE_CHARS = 180_000
LONG_CELL_CHARS = 200_000
StartMock = Callable[..., RunningMock]


# --------------------------------------------------------------------------- a tiny provider


class LongErrorApi:
    """A provider that answers 400 with a ~180 KB JSON message for prompts marked [long],
    and makes a job for every other create (the simulated API has no such fault)."""

    def __init__(self) -> None:
        self.creates = 0
        self.jobs: list[dict[str, object]] = []
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _create(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.creates += 1
        if "[long]" in str(form.get("prompt", "")):
            message = "your prompt was refused because " + "x" * LONG_MESSAGE_CHARS
            error = {"message": message, "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=400)
        job = {
            "id": f"video_{len(self.jobs) + 1:04d}",
            "object": "video",
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            **{name: str(form.get(name, "")) for name in ("prompt", "model", "size", "seconds")},
        }
        self.jobs.append(job)
        return web.json_response(job)

    async def _list(self, _request: web.Request) -> web.Response:
        return web.json_response({"data": self.jobs[::-1], "has_more": False})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/videos", self._create)
        app.router.add_get("/v1/videos", self._list)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> LongErrorApi:
        self._thread.start()
        assert self._ready.wait(timeout=30), "the tiny provider did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


@pytest.fixture
def long_error_api() -> Iterator[LongErrorApi]:
    with LongErrorApi() as api:
        yield api


# --------------------------------------------------------------------------- helpers


def rows_manifest(folder: Path, rows: int = 3, *, notes: dict[int, str] | None = None) -> Path:
    """``rows`` rows with ids 001, 002, … (numbers a spreadsheet likes to rewrite)."""
    lines = [["id", "prompt", "seconds", "notes"]]
    for n in range(1, rows + 1):
        lines.append([f"{n:03d}", f"a kite over the sea, take {n}", "4", (notes or {}).get(n, "")])
    return write_csv(folder / "m.csv", lines)


def results_of(manifest: Path) -> Path:
    return manifest.with_name(f"{manifest.stem}.results.csv")


def run(invoke: Invoke, base_url: str, manifest: Path, *extra: str) -> tuple[int, str]:
    result = invoke("run", manifest, "--base-url", base_url, *FAST, *extra)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def ran_two_rows(folder: Path, invoke: Invoke, mock_api: RunningMock) -> Path:
    """A two-row manifest, run once (two jobs made): the file a later edit is made to."""
    manifest = rows_manifest(folder, 2)
    assert run(invoke, mock_api.base_url, manifest)[0] == 0
    return manifest


def assert_refused(invoke: Invoke, mock_api: RunningMock, manifest: Path, why: str) -> None:
    """A rerun is refused with exit 2 saying ``why``, and buys nothing beyond the two jobs."""
    code, output = run(invoke, mock_api.base_url, manifest)
    assert code == 2
    assert why in output
    assert mock_api.state.create_requests == 2


def csv_rows(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))


def save_like_a_spreadsheet(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> None:
    """What "Save as CSV" writes: CRLF lines, in ``encoding``."""
    write_csv(path, rows, encoding=encoding)


# --------------------------------------------------------------------------- long cells


def test_a_provider_message_of_180_kb_is_stored_as_an_excerpt_and_cuts_nothing(
    tmp_path: Path, invoke: Invoke, long_error_api: LongErrorApi
) -> None:
    lines = [["id", "prompt", "seconds"]]
    lines += [[f"r{n}", f"a lighthouse, shot {n}", "4"] for n in range(1, 9)]
    lines[4][1] += " [long]"  # one row of 8 draws the long refusal
    manifest = write_csv(tmp_path / "m.csv", lines)
    for _ in range(3):
        code, output = run(invoke, long_error_api.base_url, manifest)
        assert code == 1, output  # the refused row needs attention
    assert len(long_error_api.jobs) == 7, "a row was paid for twice"
    states = read_ledger(results_of(manifest))
    assert len(states) == 8
    refused = states["r4"]
    assert refused["status"] == "rejected"
    assert len(refused["error_message"]) < 2_200
    assert "180,032 characters in all" in refused["error_message"]
    assert all(s["job_id"] for k, s in states.items() if k != "r4")


def test_a_200000_character_cell_survives_three_runs_and_a_poll(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = rows_manifest(tmp_path, 4, notes={2: "n" * LONG_CELL_CHARS})
    for _ in range(3):
        code, output = run(invoke, mock_api.base_url, manifest)
        assert code == 0, output
    assert mock_api.state.jobs_created == 4
    results = results_of(manifest)
    before = results.read_bytes()
    poll = invoke("poll", results, "--base-url", mock_api.base_url, "--no-progress")
    assert poll.exit_code == 0, poll.output
    after = results.read_bytes()
    assert after.startswith(before), "poll cut the results file"
    states = read_ledger(results)
    assert states["002"]["notes"] == "n" * LONG_CELL_CHARS
    assert {s["status"] for s in states.values()} == {"completed"}


# --------------------------------------------------------------------------- rewritten files


def delete_job_id_column(rows: list[list[str]]) -> list[list[str]]:
    at = rows[0].index("job_id")
    return [row[:at] + row[at + 1 :] for row in rows]


def sort_newest_first(rows: list[list[str]]) -> list[list[str]]:
    return [rows[0], *reversed(rows[1:])]


def ids_as_numbers(rows: list[list[str]]) -> list[list[str]]:
    return [rows[0], *([str(int(row[0])), *row[1:]] for row in rows[1:])]


EDITS: dict[str, tuple[Callable[[list[list[str]]], list[list[str]]], str, str]] = {
    "job_id column deleted": (delete_job_id_column, "utf-8-sig", "columns removed: job_id"),
    "rows sorted newest first": (sort_newest_first, "utf-8-sig", "rows reordered"),
    "ids turned into numbers": (ids_as_numbers, "utf-8-sig", "shorter than what batchgen wrote"),
    "re-encoded as ANSI": (lambda rows: rows, "cp1252", "re-saved without its UTF-8"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_results_file_rewritten_by_a_spreadsheet_is_refused_and_nothing_is_sent(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, edit: str
) -> None:
    change, encoding, what = EDITS[edit]
    manifest = rows_manifest(tmp_path, 3)
    assert run(invoke, mock_api.base_url, manifest)[0] == 0
    results = results_of(manifest)
    save_like_a_spreadsheet(results, change(csv_rows(results)), encoding)
    edited = results.read_bytes()
    for args in (("run", manifest, "--base-url", mock_api.base_url, *FAST), ("report", results)):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "changed since batchgen wrote it" in result.stderr
        assert what in result.stderr
        assert f"batchgen repair {results}" in result.stderr
        assert "Traceback" not in result.output
    assert mock_api.state.create_requests == 3  # nothing sent after the first run
    assert results.read_bytes() == edited  # and nothing written


def test_a_cell_edited_in_place_is_refused(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = ran_two_rows(tmp_path, invoke, mock_api)
    results = results_of(manifest)
    rows = csv_rows(results)
    rows[-1][rows[0].index("status")] = "failed"  # as long as "queued": only the hash tells
    save_like_a_spreadsheet(results, rows)
    assert_refused(invoke, mock_api, manifest, "cells were edited or rows reordered")


def test_lines_appended_by_hand_are_accepted_unless_they_forget_a_job(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = ran_two_rows(tmp_path, invoke, mock_api)
    results = results_of(manifest)
    rows = csv_rows(results)
    status, job_id = rows[0].index("status"), rows[0].index("job_id")
    appended = list(rows[-1])
    appended[status] = "completed"
    with results.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow(appended)
    assert run(invoke, mock_api.base_url, manifest)[0] == 0
    assert read_ledger(results)[appended[0]]["status"] == "completed"
    appended[job_id] = ""
    with results.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow(appended)
    assert_refused(invoke, mock_api, manifest, f"drops the job id {rows[-1][job_id]}")


def test_a_results_file_deleted_behind_its_seal_is_refused(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = ran_two_rows(tmp_path, invoke, mock_api)
    results_of(manifest).write_bytes(b"")
    assert_refused(invoke, mock_api, manifest, "it is gone or empty")


def test_a_file_of_an_older_batchgen_is_accepted_once_and_sealed(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = ran_two_rows(tmp_path, invoke, mock_api)
    results = results_of(manifest)
    seal_path(results).unlink()
    code, output = run(invoke, mock_api.base_url, manifest)
    assert code == 0, output
    assert "no seal beside it" in output and "sealed now" in output
    sealed = load_seal(results)
    assert sealed is not None and sealed.length == results.stat().st_size
    assert mock_api.state.create_requests == 2


# --------------------------------------------------------------------------- repair


@pytest.mark.parametrize("edit", ["job_id column deleted", "rows sorted newest first"])
def test_repair_then_a_rerun_sends_nothing_already_paid(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, edit: str
) -> None:
    change, encoding, _what = EDITS[edit]
    manifest = rows_manifest(tmp_path, 3)
    run(invoke, mock_api.base_url, manifest, "--limit", "2")
    results = results_of(manifest)
    edited = change(csv_rows(results))
    save_like_a_spreadsheet(results, edited, encoding)
    repaired = invoke("repair", results)
    assert repaired.exit_code == 0, repaired.output
    assert "2 rows kept" in repaired.stdout
    backups = list(tmp_path.glob("m.results.csv.bak-*"))
    assert len(backups) == 1 and csv_rows(backups[0]) == edited
    code, output = run(invoke, mock_api.base_url, manifest, "--max-jobs", "3")
    assert code == 0, output
    assert mock_api.state.jobs_created == 3  # only the row never sent before
    states = read_ledger(results)
    assert sorted(s["job_id"] for s in states.values()) == sorted(mock_api.state.jobs)


def test_repair_keeps_rows_whose_job_id_is_lost_unsent_where_jobs_cannot_be_listed(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    relay = load_profile("relay")
    mock = start_mock(MockConfig(profile=relay, listing=False, idempotency=False))
    manifest = rows_manifest(tmp_path, 2)
    run(invoke, mock.base_url, manifest, "--profile", "relay")
    results = results_of(manifest)
    save_like_a_spreadsheet(results, delete_job_id_column(csv_rows(results)))
    assert invoke("repair", results).exit_code == 0
    code, output = run(invoke, mock.base_url, manifest, "--profile", "relay")
    assert code == 1  # unresolved: needs attention, not money
    assert mock.state.create_requests == 2
    assert {s["status"] for s in read_ledger(results).values()} == {"unresolved"}
    assert "job id was lost" in output or "unresolved" in output


def test_repair_warns_about_ids_a_spreadsheet_turned_into_numbers(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = ran_two_rows(tmp_path, invoke, mock_api)
    results = results_of(manifest)
    save_like_a_spreadsheet(results, ids_as_numbers(csv_rows(results)))
    repaired = invoke("repair", results)
    assert repaired.exit_code == 0
    assert "look like numbers a spreadsheet may have rewritten" in repaired.stdout
    assert "--dry-run" in repaired.stdout


# --------------------------------------------------------------------------- one door


def test_a_symlink_to_the_results_file_meets_the_same_lock(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = rows_manifest(tmp_path, 2)
    real = results_of(manifest)
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "link.csv"
    link.symlink_to(real)
    with Ledger.open(real):
        result = invoke("run", manifest, "--base-url", mock_api.base_url, "--out", link, *FAST)
    assert result.exit_code == 3, result.output
    assert mock_api.state.create_requests == 0
