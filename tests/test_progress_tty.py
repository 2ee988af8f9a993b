"""What a person at a terminal sees: the real CLI under a pseudo-terminal with --progress.

Log lines print above the bars (never glued into one), the poll bar's total is known from
the start (its ETA does not jump), and the closing summary comes after the bars closed.
Under cron (no terminal) the plain log lines are unchanged: see test_cli and test_pipeline.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from batchgen.mock import MockConfig, MockThread
from tests.helpers import API_KEY, FAST, FOLLOW, write_csv

ROWS = 6
#: A bar as tqdm draws it: "poll:  50%|█████     | 3/6 [00:01<00:01, ...]".
BAR = re.compile(r"\b(submit|poll): +\d+%\|[^|]*\| *(\d+)/(\d+)")
#: Cursor moves and line erasing tqdm writes between bars.
ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def manifest(tmp_path: Path) -> Path:
    rows = [["id", "prompt"]] + [[f"r{n}", f"a calm sea {n}"] for n in range(ROWS)]
    return write_csv(tmp_path / "m.csv", rows)


def run_in_terminal(command: list[str], timeout: float = 90.0) -> tuple[int, str]:
    """Run ``command`` with stdout and stderr on one pseudo-terminal, 200 columns wide
    (so that no bar wraps); its exit code and everything the terminal received."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, "COLUMNS": "200", "TERM": "xterm"}
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process and its children are gone
                break
            if not chunk:
                break
            received += chunk
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        os.close(leader)
    return code, received.decode("utf-8", errors="replace")


def screen(text: str) -> list[str]:
    """The terminal's lines once everything was drawn (scrollback included), as a terminal
    shows them: characters overwrite, ``\\r`` returns, ``\\n`` goes down, ``ESC[nA`` up."""
    lines: list[list[str]] = [[]]
    row = col = 0
    for token in re.findall(r"\x1b\[(\d*)([A-Za-z])|(\r)|(\n)|([^\x1b\r\n])", text):
        count, command, ret, newline, char = token
        if command == "A":
            row = max(0, row - int(count or 1))
        elif ret:
            col = 0
        elif newline:
            row += 1
            lines.extend([] for _ in range(row + 1 - len(lines)))
        elif char:
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
    return ["".join(line).rstrip() for line in lines if "".join(line).strip()]


def drawings(text: str) -> list[str]:
    """Every drawing of a line, in order (tqdm redraws a bar after each ``\\r``)."""
    return [piece for piece in re.split(r"[\r\n]+", ESCAPE.sub("\n", text)) if piece.strip()]


def run_at_terminal(tmp_path: Path, *extra: str) -> tuple[int, str]:
    # content ready only a moment after completion: the download logs "not ready yet"
    # while both bars are on screen
    config = MockConfig(job_duration=0.3, content_delay=0.4, not_ready_status=409)
    with MockThread(config) as mock:
        command = [
            sys.executable,
            "-m",
            "batchgen",
            "run",
            str(manifest(tmp_path)),
            "--base-url",
            mock.base_url,
            "--progress",
            *FAST,
            *FOLLOW,
            *extra,
        ]
        code, text = run_in_terminal(command)
    assert "Traceback" not in text, text
    return code, text


def bars(lines: list[str], name: str) -> list[tuple[int, int]]:
    """(done, total) of every drawing of the bar ``name``."""
    found = [(m.group(1), int(m.group(2)), int(m.group(3))) for m in map(BAR.search, lines) if m]
    return [(done, total) for bar, done, total in found if bar == name]


def test_log_lines_print_above_the_bars_never_inside_one(tmp_path: Path) -> None:
    code, text = run_at_terminal(tmp_path, "--download", str(tmp_path / "videos"))
    lines = screen(text)
    assert code == 0, "\n".join(lines)
    logged = [line for line in lines if "not ready yet" in line or "sending" in line]
    assert any("not ready yet" in line for line in logged), "it should log under the bars"
    for line in logged:
        assert not BAR.search(line), f"a log line glued into a bar: {line!r}"
        assert line.startswith(("download ", "sending ")), line


def test_the_poll_bars_total_is_known_from_the_start(tmp_path: Path) -> None:
    code, text = run_at_terminal(tmp_path, "--download", str(tmp_path / "videos"))
    lines = drawings(text)
    assert code == 0, "\n".join(lines)
    polls = bars(lines, "poll")
    assert polls, "\n".join(lines)
    assert {total for _, total in polls} == {ROWS}  # never 1/1, 2/2 … as jobs arrive
    assert polls[-1] == (ROWS, ROWS)
    assert {total for _, total in bars(lines, "submit")} == {ROWS}


def test_the_summary_comes_after_the_bars_closed(tmp_path: Path) -> None:
    code, text = run_at_terminal(tmp_path, "--download", str(tmp_path / "videos"))
    lines = screen(text)
    assert code == 0, "\n".join(lines)
    drawn = [n for n, line in enumerate(lines) if BAR.search(line)]
    summary = [n for n, line in enumerate(lines) if line.startswith(("results:", "all rows:"))]
    assert drawn and len(summary) == 2, "\n".join(lines)
    assert max(drawn) < min(summary), "\n".join(lines)
    # both bars stay on screen, finished, each on a line of its own
    assert bars([lines[n] for n in drawn], "submit") == [(ROWS, ROWS)], "\n".join(lines)
    assert bars([lines[n] for n in drawn], "poll") == [(ROWS, ROWS)], "\n".join(lines)


def test_under_cron_the_plain_lines_stay_as_they_were(tmp_path: Path) -> None:
    config = MockConfig(job_duration=0.3)
    with MockThread(config) as mock:
        command = [sys.executable, "-m", "batchgen", "run", str(manifest(tmp_path))]
        command += ["--base-url", mock.base_url, *FAST, *FOLLOW]
        env = {**os.environ, "OPENAI_API_KEY": API_KEY}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "|" not in done.stderr and "\r" not in done.stderr  # no bar, no redrawing
    last = done.stderr.splitlines()[-1]
    assert re.fullmatch(rf"\S+ batchgen: poll: {ROWS}/{ROWS} \(100%\) completed {ROWS}", last), last
    assert f"submit: {ROWS}/{ROWS} (100%) queued {ROWS}" in done.stderr
    assert done.stdout.startswith("results: ")  # the summary, on stdout as before
