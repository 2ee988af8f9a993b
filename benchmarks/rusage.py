"""``python -m benchmarks.rusage OUT.json COMMAND...``: run COMMAND, write its own rusage.

Linux gives a child the high-water RSS of the process it was forked from (``ru_maxrss``
survives fork and exec), so a command started straight from the benchmark, which holds a
few hundred MB itself, would report at least that. This small launcher forks COMMAND from
a fresh interpreter and writes COMMAND's own peak memory and CPU time to OUT.json.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command, forward SIGINT/SIGTERM to it, and record what it cost."""
    out, *command = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: os.kill(pid, number))
    _, status, usage = os.wait4(pid, 0)
    report = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
