"""Measuring helpers: repeated figures, goals, and child processes with their own rusage."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Decimals shown for each unit.
DIGITS = {"ratio": 3, "x": 2, "ms/job": 3, "s": 2, "%": 1, "videos/s": 1, "req/video": 2}


@dataclass(frozen=True)
class Goal:
    """A target for the median of a figure: ``at least`` or ``at most`` ``limit``."""

    at_least: float | None = None
    at_most: float | None = None

    def met(self, value: float) -> bool:
        """Whether ``value`` meets this goal."""
        if self.at_least is not None and value < self.at_least:
            return False
        return not (self.at_most is not None and value > self.at_most)

    def text(self) -> str:
        """The goal as printed in the table, e.g. ``>= 0.9``."""
        if self.at_least is not None:
            return f">= {self.at_least:g}"
        return f"<= {self.at_most:g}" if self.at_most is not None else ""


@dataclass
class Figure:
    """One line of the table: a measured quantity over several repetitions."""

    item: str
    label: str
    unit: str
    goal: Goal | None = None
    values: list[float] = field(default_factory=list)

    @property
    def digits(self) -> int:
        """Decimals to print: by unit, none for counts, rates and megabytes."""
        return DIGITS.get(self.unit, 0)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def verdict(self) -> str:
        """``met``/``MISSED`` against the goal, or blank when there is none."""
        if self.goal is None or not self.values:
            return ""
        return "met" if self.goal.met(self.median) else "MISSED"


@dataclass(frozen=True)
class ChildResult:
    """How a child process ended and what it cost, from its own ``wait4`` rusage."""

    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    max_rss_mb: float
    stdout: str
    stderr: str


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: this one, with the repo importable and no provider set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_child(
    argv: Sequence[str],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    interrupt_after: float | None = None,
) -> ChildResult:
    """Run ``argv`` to completion and return its own peak memory and CPU time.

    ``argv`` is started through :mod:`benchmarks.rusage`, so that its peak memory is its
    own and not this process's. ``interrupt_after`` sends SIGINT after that many seconds
    (batchgen then finishes the requests in flight and exits 130), as Ctrl-C would. The
    child runs in ``workdir``, where its output is captured too.
    """
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    out_path, err_path = workdir / f"child-{stamp}.out", workdir / f"child-{stamp}.err"
    usage_path = workdir / f"child-{stamp}.json"
    launcher = [sys.executable, "-m", "benchmarks.rusage", str(usage_path), *argv]
    with out_path.open("w+") as out, err_path.open("w+") as err:
        process = subprocess.Popen(
            launcher, stdout=out, stderr=err, env=child_env(env), cwd=workdir,
            start_new_session=True,  # so that a timeout can stop the launcher and the command
        )  # fmt: skip
        _wait(process, timeout, interrupt_after)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    usage = json.loads(usage_path.read_text(encoding="utf-8"))
    return ChildResult(
        exit_code=int(usage["exit_code"]),
        wall_seconds=float(usage["wall_seconds"]),
        cpu_seconds=float(usage["cpu_seconds"]),
        max_rss_mb=int(usage["max_rss_kb"]) / 1024,  # Linux reports kilobytes
        stdout=stdout,
        stderr=stderr,
    )


def _wait(process: subprocess.Popen[bytes], timeout: float, interrupt_after: float | None) -> None:
    """Wait for the launcher; interrupt it once, and kill its session at ``timeout``."""
    started = time.perf_counter()
    interrupted = False
    while process.poll() is None:
        elapsed = time.perf_counter() - started
        if interrupt_after is not None and not interrupted and elapsed >= interrupt_after:
            process.send_signal(signal.SIGINT)  # the launcher forwards it to the command
            interrupted = True
        if elapsed >= timeout:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise RuntimeError(f"bench: {process.args!r} killed after {timeout:g} s")
        time.sleep(0.01)
