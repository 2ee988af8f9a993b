"""Crashes: the runner killed at random moments, stopped by SIGTERM, or short of disk.

The runner is the real ``python -m batchgen run`` in a subprocess; the simulated API runs
in this process (a :class:`MockThread`) so the test can count what it made. The provider
lists its jobs but ignores idempotency keys — the hard case, where only the ``submitting``
intent in the results file and the provider's list stand between a crash and paying twice.
The relay variant (each built-in relay profile, fewer trials) has no list at all: a row
killed mid-create ends ``unresolved`` and is sent again only once ``batchgen resolve``
settled it.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchgen.ledger import Record, read_ledger
from batchgen.mock import MockConfig, MockThread, RunningMock
from batchgen.profile_files import load_profile
from batchgen.seal import load_seal
from tests.helpers import API_KEY, write_csv

ROWS = 30
TRIALS = 20
PROCESS_TIMEOUT = 60.0
#: Fast, but slow enough (latency, rpm) that a run lasts long enough to be hit mid-flight.
RUN_OPTIONS = (
    "--rpm", "6000", "--concurrency", "4", "--backoff", "0.01", "--max-attempts", "20",
    "--request-timeout", "10", "--no-progress",
    "--max-running", "0",  # the simulated relays finish jobs at once: a cap is not the point
)  # fmt: skip
PROVIDER_STATUSES = {"queued", "in_progress", "completed", "failed"}
#: Runs the CLI with a file-size limit: writes past it fail with EFBIG, as on a full disk
#: (Python ignores SIGXFSZ, so the write fails instead of killing the process).
FULL_DISK_LAUNCHER = (
    "import resource, runpy, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "sys.argv = ['batchgen', *sys.argv[2:]]\n"
    "runpy.run_module('batchgen', run_name='__main__')\n"
)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, step: float = 0.002) -> bool:
    """Poll ``condition`` until true; False if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def ledger_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def exited(process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: process.poll() is not None


def lines_or_exit(
    results: Path, lines: int, process: subprocess.Popen[bytes]
) -> Callable[[], bool]:
    """True once the results file has ``lines`` lines, or the process has ended."""
    return lambda: ledger_lines(results) >= lines or process.poll() is not None


@dataclass
class Batch:
    """A manifest of distinct prompts, its results file and the command that runs it."""

    folder: Path
    mock: RunningMock
    rows: int = ROWS
    prompts: dict[str, str] = field(default_factory=dict)
    profile: str = "openai"

    def __post_init__(self) -> None:
        self.folder.mkdir(exist_ok=True)
        lines = [["id", "prompt", "seconds"]]
        seconds = load_profile(self.profile).seconds
        for n in range(self.rows):
            key = f"k{n:03d}"
            self.prompts[key] = f"{self.folder.name}: shot {n} of a lighthouse in a storm"
            lines.append([key, self.prompts[key], seconds[n % len(seconds)]])
        write_csv(self.folder / "night.csv", lines)

    @property
    def manifest(self) -> Path:
        return self.folder / "night.csv"

    @property
    def results(self) -> Path:
        return self.folder / "night.results.csv"

    def command(self, *extra: str) -> list[str]:
        args = ["run", str(self.manifest), "--base-url", self.mock.base_url, *RUN_OPTIONS]
        return [sys.executable, "-m", "batchgen", *args, "--profile", self.profile, *extra]

    def start(self, command: list[str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command or self.command(),
            env={**os.environ, "OPENAI_API_KEY": API_KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def run_to_completion(self) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.command(),
            env={**os.environ, "OPENAI_API_KEY": API_KEY},
            capture_output=True,
            timeout=PROCESS_TIMEOUT,
        )

    def check(self) -> dict[str, Record]:
        """One job per row on the server; every row in the results, with its own job."""
        with self.results.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.DictReader(handle))
        assert all(None not in line for line in lines)  # readable by any CSV reader
        states = read_ledger(self.results)
        assert set(states) == set(self.prompts), "a row is missing from the results"
        assert {s["status"] for s in states.values()} <= PROVIDER_STATUSES
        state = self.mock.state
        assert state.jobs_created == self.rows, "a row was paid for twice"
        assert Counter(state.job_count_by_prompt().values()) == {1: self.rows}
        job_ids = [s["job_id"] for s in states.values()]
        assert sorted(job_ids) == sorted(state.jobs)  # one-to-one
        for key, row in states.items():
            assert state.jobs[row["job_id"]]["prompt"] == self.prompts[key]
        sealed = load_seal(self.results)  # a finished run seals every byte it wrote
        assert sealed is not None and sealed.length == self.results.stat().st_size
        return states

    def seal_lags(self) -> bool:
        """True when the file has lines the seal does not cover yet (a kill between updates)."""
        sealed = load_seal(self.results)
        return sealed is not None and sealed.length < self.results.stat().st_size


@pytest.fixture
def provider() -> Iterator[Callable[[], RunningMock]]:
    """Fresh simulated providers (list: yes, idempotency keys: no), stopped after the test."""
    threads: list[MockThread] = []

    def start() -> RunningMock:
        thread = MockThread(MockConfig(latency=0.01, idempotency=False, listing=True))
        threads.append(thread)
        return thread.__enter__()

    yield start
    for thread in threads:
        thread.__exit__(None, None, None)


def finish(process: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    try:
        stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
        pytest.fail("the runner did not finish in time")
    return process.returncode, stdout, stderr


# --------------------------------------------------------------------------- SIGKILL


def test_sigkill_at_random_moments_never_pays_twice_nor_loses_a_row(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    rng = random.Random(20251125)
    caught_mid_create = 0  # kills that left a row's create in flight (its last state: intent)
    seal_lagged = 0  # kills that left lines after the seal: the rerun must accept them
    for trial in range(TRIALS):
        batch = Batch(tmp_path / f"trial-{trial:02d}", provider())
        kills = rng.randint(1, 2)
        for _ in range(kills):
            process = batch.start()
            if trial % 2:
                # "after the results file has N lines": aimed at the submissions themselves
                target = ledger_lines(batch.results) + rng.randint(1, ROWS)
                wait_for(lines_or_exit(batch.results, target, process))
            else:
                # a seeded random moment: start-up, validation, submission or the end
                wait_for(exited(process), timeout=rng.uniform(0.3, 0.8))
            process.send_signal(signal.SIGKILL)
            finish(process)
            states = read_ledger(batch.results)  # still readable after every kill
            caught_mid_create += any(s["status"] == "submitting" for s in states.values())
            seal_lagged += batch.seal_lags()
        for _attempt in range(3):  # rerun the same command until it finishes (bounded)
            done = batch.run_to_completion()
            assert b"Traceback" not in done.stderr, done.stderr.decode()
            if done.returncode == 0:
                break
        assert done.returncode == 0, done.stderr.decode()
        batch.check()
    assert caught_mid_create >= 3, "the kills never landed between an intent and its answer"
    assert seal_lagged >= 3, "the kills never left lines the seal did not cover yet"


RELAY_PROFILES = ("new-api", "relay", "litellm", "sora-app")
RELAY_TRIALS = 4  # per profile: fewer than the official runs, so make test stays short


@pytest.fixture
def relay() -> Iterator[Callable[[str], RunningMock]]:
    """Fresh simulated relays served with a profile's flavour (no list, no idempotency)."""
    threads: list[MockThread] = []

    def start(name: str) -> RunningMock:
        thread = MockThread(MockConfig.for_profile(load_profile(name), latency=0.01))
        threads.append(thread)
        return thread.__enter__()

    yield start
    for thread in threads:
        thread.__exit__(None, None, None)


def resolve_from_dashboard(batch: Batch, key: str) -> None:
    """What the user does for an unresolved row: look in the relay's dashboard (the
    simulated API's jobs), then ``batchgen resolve`` with the job, or ``--not-made``."""
    found = [i for i, job in batch.mock.state.jobs.items() if job["prompt"] == batch.prompts[key]]
    how = ["--job-id", found[0]] if found else ["--not-made"]
    command = [sys.executable, "-m", "batchgen", "resolve", str(batch.results), key, *how]
    done = subprocess.run(command, capture_output=True, timeout=PROCESS_TIMEOUT)
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("name", RELAY_PROFILES)
def test_sigkill_behind_a_relay_that_cannot_list_never_pays_twice_and_resolve_settles_it(
    tmp_path: Path, relay: Callable[[str], RunningMock], name: str
) -> None:
    """Killed mid-create, a row's job may exist where nothing can list it: the rerun leaves
    it ``unresolved`` (exit 1) and resends nothing; settled by hand, the next run ends with
    exactly one job per row."""
    rng = random.Random(f"relay-{name}")
    settled = 0
    for trial in range(RELAY_TRIALS):
        batch = Batch(tmp_path / f"trial-{trial:02d}", relay(name), profile=name)
        process = batch.start()
        target = ledger_lines(batch.results) + rng.randint(1, ROWS)
        wait_for(lines_or_exit(batch.results, target, process))
        process.send_signal(signal.SIGKILL)
        finish(process)
        done = batch.run_to_completion()
        assert b"Traceback" not in done.stderr, done.stderr.decode()
        states = read_ledger(batch.results)
        unresolved = sorted(k for k, s in states.items() if s["status"] == "unresolved")
        assert done.returncode == (1 if unresolved else 0), done.stderr.decode()
        assert {s["status"] for k, s in states.items() if k not in unresolved} <= PROVIDER_STATUSES
        assert max(batch.mock.state.job_count_by_prompt().values()) == 1  # none paid twice
        for key in unresolved:
            resolve_from_dashboard(batch, key)
        settled += len(unresolved)
        done = batch.run_to_completion()
        assert done.returncode == 0, done.stderr.decode()
        batch.check()
    assert settled >= 1, "the kills never left a create of unknown outcome"


# --------------------------------------------------------------------------- SIGTERM


def test_sigterm_at_random_moments_stops_gracefully_and_the_rerun_completes(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    rng = random.Random(143)
    stopped_mid_run = 0
    for trial in range(TRIALS // 2):
        batch = Batch(tmp_path / f"trial-{trial:02d}", provider())
        process = batch.start()
        target = rng.randint(2, ROWS)  # header + at least one line: submission has begun
        assert wait_for(lines_or_exit(batch.results, target, process))
        process.send_signal(signal.SIGTERM)
        code, stdout, stderr = finish(process)
        assert b"Traceback" not in stderr, stderr.decode()
        states = read_ledger(batch.results)
        if code == 143:
            stopped_mid_run += 1
            assert b"run the same command again to resume" in stdout
            # requests in flight were finished and recorded: no row is left mid-create
            assert {s["status"] for s in states.values()} <= PROVIDER_STATUSES
            assert 0 < len(states) <= ROWS
        else:  # the signal came after the last row: the run had finished its work
            assert len(states) == ROWS, (code, stderr.decode())
        done = batch.run_to_completion()
        assert done.returncode == 0, done.stderr.decode()
        batch.check()
    assert stopped_mid_run >= TRIALS // 4


# --------------------------------------------------------------------------- disk trouble


def _run_with_results_at(batch: Batch, out: Path) -> subprocess.CompletedProcess[bytes]:
    """The batch's run command with ``--out out``, run to completion."""
    return subprocess.run(
        batch.command("--out", str(out)),
        env={**os.environ, "OPENAI_API_KEY": API_KEY},
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
    )


def test_results_in_a_missing_folder_fail_before_anything_is_sent(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    batch = Batch(tmp_path, provider())
    out = tmp_path / "no-such-folder" / "results.csv"
    done = _run_with_results_at(batch, out)
    assert done.returncode == 2
    assert b"Traceback" not in done.stderr
    assert str(out.parent).encode() in done.stderr and b"does not exist" in done.stderr
    assert batch.mock.state.create_requests == 0
    assert not out.parent.exists()


def test_results_under_a_regular_file_fail_before_anything_is_sent(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    batch = Batch(tmp_path, provider())
    (tmp_path / "notes.txt").write_text("not a folder\n")
    out = tmp_path / "notes.txt" / "results.csv"
    done = _run_with_results_at(batch, out)
    assert done.returncode == 2
    assert b"Traceback" not in done.stderr
    assert str(out.parent).encode() in done.stderr
    assert batch.mock.state.create_requests == 0
    assert (tmp_path / "notes.txt").read_text() == "not a folder\n"


def test_results_pointing_at_the_manifest_itself_leave_it_untouched(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    batch = Batch(tmp_path, provider())
    before = batch.manifest.read_bytes()
    done = _run_with_results_at(batch, batch.manifest)
    assert done.returncode == 2, done.stderr.decode()
    assert b"not a batchgen results file" in done.stderr
    assert b"Traceback" not in done.stderr
    assert batch.manifest.read_bytes() == before
    assert batch.mock.state.create_requests == 0


def _unwritable_folders() -> list[object]:
    """Folders this process cannot create files in. Root ignores permission bits, so as root
    a chmod'ed folder is skipped and kernel filesystems that refuse new files stand in."""
    is_root = os.geteuid() == 0
    return [
        pytest.param(
            "chmod",
            marks=pytest.mark.skipif(is_root, reason="root writes into a chmod 555 folder"),
            id="chmod-555",
        ),
        pytest.param("/sys", id="sysfs-EACCES"),
        pytest.param("/proc", id="procfs-ENOENT"),
    ]


def _can_create_in(folder: Path) -> bool:
    probe = folder / f".batchgen-probe-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.mark.parametrize("where", _unwritable_folders())
def test_results_in_an_unwritable_folder_fail_before_anything_is_sent(
    tmp_path: Path, provider: Callable[[], RunningMock], where: str
) -> None:
    batch = Batch(tmp_path, provider())
    if where == "chmod":
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
    else:
        folder = Path(where)
        if _can_create_in(folder):
            pytest.skip(f"{where} accepts new files here")
    out = folder / f"batchgen-test-{os.getpid()}.results.csv"
    done = _run_with_results_at(batch, out)
    assert batch.mock.state.create_requests == 0
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert done.returncode == 2, done.stderr.decode()
    assert str(out).encode() in done.stderr
    assert b"another batchgen run" not in done.stderr


def _run_with_disk_space(batch: Batch, limit: int) -> subprocess.CompletedProcess[bytes]:
    args = ["run", str(batch.manifest), "--base-url", batch.mock.base_url, *RUN_OPTIONS]
    return subprocess.run(
        [sys.executable, "-c", FULL_DISK_LAUNCHER, str(limit), *args],
        env={**os.environ, "OPENAI_API_KEY": API_KEY},
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
    )


def test_a_full_disk_mid_run_loses_nothing_and_the_rerun_completes(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    batch = Batch(tmp_path, provider())
    full = _run_with_disk_space(batch, 4000)  # room for the header and a dozen lines
    assert full.returncode != 0
    states = read_ledger(batch.results)
    assert 0 < len(states) < ROWS
    assert 0 < batch.mock.state.jobs_created < ROWS
    done = batch.run_to_completion()  # space was freed
    assert done.returncode == 0, done.stderr.decode()
    batch.check()


def test_a_full_disk_mid_run_is_reported_clearly(
    tmp_path: Path, provider: Callable[[], RunningMock]
) -> None:
    batch = Batch(tmp_path, provider())
    full = _run_with_disk_space(batch, 4000)
    assert b"Traceback" not in full.stderr, full.stderr.decode()
    assert full.returncode == 2
    assert b"cannot append to the results file" in full.stderr
