"""SIGTERM and SIGINT: stop taking rows, finish what is in flight, exit 143/130, resume."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from batchgen.ledger import read_ledger
from batchgen.mock import MockConfig, MockThread
from tests.helpers import API_KEY, run_command, wait_for, write_csv


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_gracefully_and_the_rerun_completes(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    rows = [["id", "prompt"]] + [[f"r{n}", f"prompt {n}"] for n in range(40)]
    path = write_csv(tmp_path / "m.csv", rows)
    results = tmp_path / "m.results.csv"
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    with MockThread(MockConfig(latency=0.05)) as mock:
        command = run_command(path, mock.base_url, "--concurrency", "2")
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: results.exists() and mock.state.jobs_created >= 3)
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == code, stderr
        assert b"run the same command again to resume" in stdout
        assert b"Traceback" not in stderr
        states = read_ledger(results)
        assert 0 < len(states) < 40
        assert all(s["status"] == "queued" for s in states.values())  # in-flight ones finished
        rerun = subprocess.run(
            [*command, "--rpm", "100000"], env=env, capture_output=True, timeout=60
        )
        assert rerun.returncode == 0, rerun.stderr
        assert mock.state.jobs_created == 40
        assert len(read_ledger(results)) == 40


def test_a_signal_during_a_retry_wait_stops_at_once_and_records_the_providers_no(
    tmp_path: Path,
) -> None:
    from batchgen.mock import Faults

    path = write_csv(tmp_path / "m.csv", [["id", "prompt"], ["a", "prompt a"]])
    results = tmp_path / "m.results.csv"
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    faults = Faults(seed=1, error_429=1.0, retry_after_seconds=100)  # "come back later"
    with MockThread(MockConfig(faults=faults)) as mock:
        command = run_command(path, mock.base_url)
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: mock.state.rate_limited >= 1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)  # well within the 30 s grace and the 100 s
        assert process.returncode == 143, stderr
        state = read_ledger(results)["a"]
        assert state["status"] == "error"  # not "submitting": the provider said no, so the
        assert mock.state.jobs_created == 0  # next run simply tries again
