"""Stop means stop: after SIGINT/SIGTERM nothing new is sent, the process exits as soon as
the requests in flight end (within --grace), and a second signal ends it at once.

Every test runs the real CLI in a subprocess against the simulated API on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, MockThread, RunningMock
from tests.helpers import API_KEY, run_command, wait_for, write_csv

ENV = {**os.environ, "OPENAI_API_KEY": API_KEY}
#: Exit within this many seconds of the signal when nothing is in flight.
PROMPT_EXIT = 2.0
# videos only: these tests count and time the video files a stop leaves
DOWNLOAD = ("--poll-rpm", "100000", "--poll-interval", "0.05", "--timeout", "60", "--no-thumbnails")


def manifest(tmp_path: Path, rows: int) -> Path:
    """A CSV of ``rows`` rows keyed r0, r1, …"""
    return write_csv(
        tmp_path / "m.csv", [["id", "prompt"]] + [[f"r{n}", f"p {n}"] for n in range(rows)]
    )


class Batch:
    """``batchgen`` in a subprocess; its stderr goes to a file, to be watched while it runs."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            command, env=ENV, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self.signalled = 0.0

    def signal(self, sig: signal.Signals) -> None:
        self.signalled = time.monotonic()
        self.process.send_signal(sig)

    def finish(self, timeout: float = 60.0) -> tuple[int, float]:
        """The exit code, and the seconds from the last signal to the exit."""
        self.process.communicate(timeout=timeout)
        elapsed = time.monotonic() - self.signalled
        self.close()
        assert "Traceback" not in self.text(), self.text()
        return self.process.returncode, elapsed

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def said(self, text: str) -> bool:
        return text in self.text()

    def close(self) -> None:
        """Kill the process if it still runs (a failed test), and close its log."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)
        self._stderr.close()


@contextmanager
def batch(command: list[str], tmp_path: Path) -> Iterator[Batch]:
    running = Batch(command, tmp_path / "stderr.log")
    try:
        yield running
    finally:
        running.close()


def rerun(command: list[str], *extra: str) -> subprocess.CompletedProcess[bytes]:
    """The same command again, fast, as the user would rerun it to resume."""
    return subprocess.run(
        [*command, "--rpm", "100000", *extra], env=ENV, capture_output=True, timeout=60
    )


def follow_command(name: str, results: Path, mock: RunningMock, *extra: str) -> list[str]:
    """``batchgen poll`` or ``batchgen download`` of ``results``, against ``mock``."""
    return [
        sys.executable,
        "-m",
        "batchgen",
        name,
        str(results),
        "--base-url",
        mock.base_url,
        *extra,
    ]


def raw_lines(results: Path) -> list[str]:
    return results.read_text(encoding="utf-8-sig").splitlines()[1:]


def test_workers_waiting_for_the_pacer_send_nothing_and_the_process_exits_at_once(
    tmp_path: Path,
) -> None:
    path, results = manifest(tmp_path, 10), tmp_path / "m.results.csv"
    with MockThread(MockConfig()) as mock:
        # one create every 10 s: after the first, every worker is waiting for its slot
        command = run_command(path, mock.base_url, "--rpm", "6", "--concurrency", "4")
        with batch(command, tmp_path) as running:
            wait_for(lambda: mock.state.jobs_created == 1 and results.exists())
            running.signal(signal.SIGINT)
            code, elapsed = running.finish()
        assert code == 130
        assert elapsed < PROMPT_EXIT
        assert mock.state.create_requests == 1  # not one more, however long we had waited
        assert [line.split(",")[0] for line in raw_lines(results)] == ["r0", "r0"]  # no intents
        assert read_ledger(results)["r0"]["status"] == "queued"
        again = rerun(command)
        assert again.returncode == 0, again.stderr
        assert mock.state.jobs_created == 10 == len(read_ledger(results))


def slow_creates(seconds: float) -> MockConfig:
    """Every create makes its job at once but answers ``seconds`` later: a request in flight."""
    return MockConfig(faults=Faults(seed=3, slow=1.0, slow_seconds=seconds))


def test_a_create_in_flight_is_finished_and_recorded_and_nothing_follows_it(
    tmp_path: Path,
) -> None:
    path, results = manifest(tmp_path, 3), tmp_path / "m.results.csv"
    with MockThread(slow_creates(2.0)) as mock:
        command = run_command(path, mock.base_url, "--concurrency", "1")
        with batch(command, tmp_path) as running:
            wait_for(lambda: mock.state.jobs_created == 1)
            running.signal(signal.SIGTERM)
            code, elapsed = running.finish()
        assert code == 143
        assert elapsed < 2.0 + PROMPT_EXIT  # the answer's delay, then out at once
        assert mock.state.create_requests == 1
        assert {k: s["status"] for k, s in read_ledger(results).items()} == {"r0": "queued"}


def test_the_grace_period_bounds_the_wait_and_the_abandoned_row_is_looked_up_next_run(
    tmp_path: Path,
) -> None:
    path, results = manifest(tmp_path, 1), tmp_path / "m.results.csv"
    with MockThread(slow_creates(60.0)) as mock:
        command = run_command(path, mock.base_url, "--grace", "1")
        with batch(command, tmp_path) as running:
            wait_for(lambda: mock.state.jobs_created == 1)
            running.signal(signal.SIGTERM)
            code, elapsed = running.finish()
        assert code == 143
        assert elapsed < 1.0 + PROMPT_EXIT
        assert read_ledger(results)["r0"]["status"] == "submitting"  # as after a crash
        again = rerun(command)
        assert again.returncode == 0, again.stderr
        assert read_ledger(results)["r0"]["job_id"]  # found by the lookup, not bought again
        assert mock.state.jobs_created == 1 and mock.state.create_requests == 1


def test_a_second_signal_abandons_requests_in_flight_at_once(tmp_path: Path) -> None:
    path, results = manifest(tmp_path, 1), tmp_path / "m.results.csv"
    with MockThread(slow_creates(60.0)) as mock:
        command = run_command(path, mock.base_url)
        with batch(command, tmp_path) as running:
            wait_for(lambda: mock.state.jobs_created == 1)
            running.signal(signal.SIGINT)
            wait_for(lambda: running.said("finishing the requests in flight"))
            running.signal(signal.SIGINT)
            code, elapsed = running.finish(timeout=20)
        assert code == 130
        assert elapsed < PROMPT_EXIT
        assert running.said("stopping now")
        assert read_ledger(results)["r0"]["status"] == "submitting"  # as after a crash
        again = rerun(command)  # the lock was released: not exit 3
        assert again.returncode == 0, again.stderr
        assert read_ledger(results)["r0"]["job_id"]
        assert mock.state.create_requests == 1  # looked up and adopted, not bought again


def slow_downloads() -> MockConfig:
    """Jobs complete at once; each video takes about two seconds to stream."""
    return MockConfig(video_bytes=64 * 1024, chunk_delay=0.5)


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()} if folder.exists() else {}


def _started_a_download(mock: RunningMock) -> bool:
    return mock.state.requests_by_endpoint["content"] >= 1


def test_with_wait_and_download_polls_and_downloads_stop_too(tmp_path: Path) -> None:
    path, results, videos = manifest(tmp_path, 3), tmp_path / "m.results.csv", tmp_path / "v"
    with MockThread(slow_downloads()) as mock:
        follow = ("--wait", "--download", str(videos), *DOWNLOAD)
        command = run_command(path, mock.base_url, "--concurrency", "1", *follow)
        with batch(command, tmp_path) as running:
            wait_for(lambda: _started_a_download(mock))
            running.signal(signal.SIGINT)
            code, elapsed = running.finish()
        assert code == 130
        assert elapsed < 2.0 + PROMPT_EXIT  # the download in flight ends, then out at once
        assert mock.state.requests_by_endpoint["content"] == 1  # the others never started
        downloaded = {k: s for k, s in read_ledger(results).items() if s["status"] == "downloaded"}
        assert len(downloaded) == 1
        (state,) = downloaded.values()
        assert _files(videos) == {Path(state["file"]).name: int(state["file_bytes"])}
        again = rerun(command)
        assert again.returncode == 0, again.stderr
    assert sorted(_files(videos).values()) == [64 * 1024] * 3
    assert mock.state.jobs_created == 3


def test_a_second_signal_mid_download_leaves_no_file_under_its_final_name(
    tmp_path: Path,
) -> None:
    path, results, videos = manifest(tmp_path, 1), tmp_path / "m.results.csv", tmp_path / "v"
    with MockThread(slow_downloads()) as mock:
        follow = ("--wait", "--download", str(videos), *DOWNLOAD)
        command = run_command(path, mock.base_url, *follow)
        with batch(command, tmp_path) as running:
            wait_for(lambda: _started_a_download(mock))
            running.signal(signal.SIGTERM)
            wait_for(lambda: running.said("finishing the requests in flight"))
            running.signal(signal.SIGTERM)
            code, elapsed = running.finish(timeout=20)
        assert code == 143
        assert elapsed < PROMPT_EXIT
        assert read_ledger(results)["r0"]["status"] == "completed"  # not downloaded
        assert all(name.endswith(".part") for name in _files(videos))  # never a cut video
        download = follow_command("download", results, mock, "--to", str(videos), "--no-thumbnails")
        again = subprocess.run(download, env=ENV, capture_output=True, timeout=60)
        assert again.returncode == 0, again.stderr
    assert list(_files(videos).values()) == [64 * 1024]
    assert read_ledger(results)["r0"]["status"] == "downloaded"


def test_poll_wait_stops_within_two_seconds_of_a_signal(tmp_path: Path) -> None:
    path, results = manifest(tmp_path, 3), tmp_path / "m.results.csv"
    with MockThread(MockConfig(job_duration=3600)) as mock:
        assert rerun(run_command(path, mock.base_url)).returncode == 0
        command = follow_command("poll", results, mock, "--wait", "--poll-interval", "0.05")
        with batch(command, tmp_path) as running:
            wait_for(lambda: mock.state.requests_by_endpoint["list"] >= 2)  # sweeping
            running.signal(signal.SIGTERM)
            code, elapsed = running.finish()
        assert code == 143
        assert elapsed < PROMPT_EXIT
    assert {s["status"] for s in read_ledger(results).values()} <= {"queued", "in_progress"}
