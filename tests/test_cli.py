"""The command line itself: serve-mock as a user starts it, help and version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from batchgen.ledger import read_ledger
from tests.helpers import API_KEY, Invoke, write_csv


def test_serve_mock_serves_a_run_from_another_process(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "serve-mock", "--port", "0", "--job-seconds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()  # the first line is its address
        assert base_url.startswith("http://127.0.0.1:")
        path = write_csv(tmp_path / "m.csv", [["id", "prompt"], ["a", "A cat"]])
        env = {**os.environ, "OPENAI_API_KEY": API_KEY}
        run = subprocess.run(
            [sys.executable, "-m", "batchgen", "run", str(path), "--base-url", base_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert read_ledger(tmp_path / "m.results.csv")["a"]["job_id"].startswith("video_")
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0


def test_help_lists_every_command_and_version_prints(invoke: Invoke) -> None:
    result = invoke("--help")
    for command in ("run", "validate", "poll", "download", "report", "serve-mock"):
        assert command in result.stdout
    assert invoke("--version").stdout.startswith("batchgen, version ")
