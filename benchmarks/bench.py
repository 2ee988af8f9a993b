"""``python -m benchmarks.bench [--quick] [--only 1,3] [--reps N]``: measure batchgen.

Runs every measurement of the "Measure it" issue against the simulated API on 127.0.0.1
(in a child process, so the client's CPU time is its own) and prints one table: the median
of the repetitions with their min and max, the goal, and whether the median meets it.
It is a script that prints figures, not a test: a missed goal does not fail it.

1. overhead: jobs/s and CPU per job with no latency, batchgen vs the openai SDK
2. latency hiding: throughput over concurrency/latency with 250 ms answers
3. pacing: --rpm 1200 against servers that rate-limit at 1,200/min and at half that
4. scale: 100,000 rows: validation, a no-op resume, peak memory
5. uploads: 500 rows with distinct ~4 MB images: peak memory
6. follow: polling and downloading 1,000 finished jobs with 20 MB videos
7. night: ``run --wait --download`` end to end against job durations, batchgen vs the SDK
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import batchgen
from benchmarks import follow as follow_item
from benchmarks import night as night_item
from benchmarks.measure import Figure
from benchmarks.scenarios import QUICK, Settings, latency_hiding, overhead, pacing, scale, uploads

Item = Callable[[Settings, Path], list[Figure]]
ITEMS: dict[str, tuple[str, Item]] = {
    "1": ("overhead", overhead),
    "2": ("latency hiding", latency_hiding),
    "3": ("pacing precision", pacing),
    "4": ("scale", scale),
    "5": ("uploads", uploads),
    "6": ("follow and download", lambda s, w: _follow(s, w)),
    "7": ("night", lambda s, w: night_item.night(w, _nights(s), sdk=s.night_sdk)),
}
#: Lines printed under the table when the item ran: what its figures mean.
NOTES: dict[str, Callable[[Settings], list[str]]] = {
    "2": lambda s: [
        f'2  not the bottleneck: "API in {s.server_workers} processes" is the simulated API in '
        f'{s.server_workers} processes sharing one port (SO_REUSEPORT); "light server" is '
        "benchmarks/light_server.py (asyncio Protocol: frames each request, answers creates "
        "only, 250 ms after the request's last byte; its own CPU per create is shown), both "
        f"on the same {os.cpu_count()} cores as the client"
    ],
    "7": lambda s: night_item.notes(_nights(s)),
}


def _nights(settings: Settings) -> tuple[night_item.Night, ...]:
    """Item 7's nights at the settings' size."""
    every = night_item.nights(settings.night_rows, settings.night_speedup)
    return tuple(n for n in every if n.tag in settings.night_tags)


COLUMNS = ("item", "measurement", "median", "min", "max", "unit", "goal", "")


def _follow(settings: Settings, work: Path) -> list[Figure]:
    # One repetition: 20 GB go over loopback and onto disk (~2 minutes) in the full run.
    return follow_item.follow(settings.follow_jobs, settings.video_bytes, 1, work)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected items and print the table."""
    args = _parse(argv)
    settings = QUICK if args.quick else Settings()
    if args.reps is not None:
        settings = replace(settings, reps=args.reps)
    if args.night:
        settings = replace(settings, night_tags=args.night)
    if args.no_sdk:
        settings = replace(settings, night_sdk=False)
    chosen = args.only.split(",") if args.only else list(ITEMS)
    print(_heading(settings, quick=args.quick), flush=True)
    figures: list[Figure] = []
    notes: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="batchgen-bench-") as work:
        for key in chosen:
            name, item = ITEMS[key]
            print(f"  running {key}. {name} ...", file=sys.stderr, flush=True)
            figures_or_note = _run_item(key, item, settings, Path(work))
            if isinstance(figures_or_note, str):
                notes.append(figures_or_note)
            else:
                figures += figures_or_note
                notes += NOTES[key](settings) if key in NOTES else []
    print(_table(figures))
    for note in notes:
        print(note)
    print(f"total {time.perf_counter() - started:.0f} s, load average at the end {_load()}")
    return 0


def _run_item(key: str, item: Item, settings: Settings, work: Path) -> list[Figure] | str:
    """The item's figures, or a line saying why it was skipped."""
    if key == "6":
        missing = follow_item.available()
        if missing is not None:
            return f"6  follow and download: skipped: {missing}"
        try:
            return item(settings, work)
        except NotImplementedError as exc:
            return f"6  follow and download: skipped: {exc}"
    return item(settings, work)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer rows and one repetition (~1 minute)"
    )
    parser.add_argument("--only", help="comma-separated items to run, e.g. 1,3 (default: all)")
    parser.add_argument("--reps", type=int, help="repetitions per measurement (default 3)")
    parser.add_argument("--night", help="item 7: which nights, e.g. A (default: A,B)")
    parser.add_argument(
        "--no-sdk",
        action="store_true",
        help="item 7: batchgen's nights only, without the SDK baseline (its night B takes 15 min)",
    )
    args = parser.parse_args(argv)
    if args.only and not set(args.only.split(",")) <= set(ITEMS):
        parser.error(f"--only takes items among {','.join(ITEMS)}")
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.night and not set(args.night.split(",")) <= {"A", "B"}:
        parser.error("--night takes nights among A,B")
    return args


def _heading(settings: Settings, *, quick: bool) -> str:
    mode = "quick" if quick else "full"
    return (
        f"batchgen {batchgen.__version__} benchmark ({mode}, {settings.reps} repetition(s), "
        f"median [min, max])\n"
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores ({_cpu_model()}), load average {_load()}; simulated API "
        "in a child process on 127.0.0.1"
    )


def _load() -> str:
    """The 1-minute load average: other work on the machine shows in the figures."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"


def _cpu_model() -> str:
    """The processor's name, where the OS says it (Linux), else the platform's."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    return names[0] if names else platform.processor() or "unknown CPU"


def _table(figures: list[Figure]) -> str:
    rows = [COLUMNS] + [_cells(f) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {2, 3, 4}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _cells(figure: Figure) -> tuple[str, ...]:
    def number(value: float) -> str:
        return f"{value:,.{figure.digits}f}"

    goal = figure.goal.text() if figure.goal else ""
    return (
        figure.item,
        figure.label,
        number(figure.median),
        number(min(figure.values)),
        number(max(figure.values)),
        figure.unit,
        goal,
        figure.verdict(),
    )


if __name__ == "__main__":
    sys.exit(main())
