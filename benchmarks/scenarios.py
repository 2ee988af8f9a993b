"""The measurements, one function per item of the benchmark; each returns table lines.

Every repetition starts a fresh simulated API in a child process and writes fresh results
files, so repetitions do not share warm state.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.clients import UNPACED_RPM, Submission, run_batchgen, run_openai_sdk
from benchmarks.data import write_done_ledger, write_manifest, write_noise_images
from benchmarks.light_server import LightServerProcess
from benchmarks.measure import ChildResult, Figure, Goal, run_child
from benchmarks.server import API_KEY, ServerOptions, ServerProcess, ServerStats

CONCURRENCY = 64
LATENCY = 0.25
PACED_RPM = 1200
UPLOAD_CONCURRENCY = 32
BATCHGEN = (sys.executable, "-m", "batchgen")
CLIENTS = ("batchgen", "sdk")  # item 2's two clients against the light server


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions: the full benchmark, or ``--quick`` for a smoke run."""

    reps: int = 3
    overhead_rows: int = 5000
    latency_waves: int = 40  # rows = waves x concurrency; ideal time = waves x latency
    pacing_seconds: float = 30.0
    scale_rows: int = 100_000
    upload_rows: int = 500
    follow_jobs: int = 1000
    video_bytes: int = 20_000_000
    night_rows: int | None = None  # item 7: None, each night's own (200 and 1,000)
    night_speedup: float = 1.0  # item 7: a further time compression
    night_tags: str = "AB"  # item 7: which nights (``--night A``)
    night_sdk: bool = True  # item 7: the SDK baseline beside batchgen (``--no-sdk``: not)
    server_workers: int = 2  # item 2: processes of the simulated API that is not the bottleneck


QUICK = Settings(
    reps=1,
    overhead_rows=1000,
    latency_waves=10,
    pacing_seconds=10.0,
    scale_rows=10_000,
    upload_rows=50,
    follow_jobs=50,
    video_bytes=2_000_000,
    night_rows=60,
    night_speedup=10.0,
)


def _rep_dir(work: Path, name: str, rep: int) -> Path:
    folder = work / f"{name}-{rep}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------- 1. overhead


def overhead(settings: Settings, work: Path) -> list[Figure]:
    """Item 1: jobs/s and client CPU per job with no latency, batchgen vs the openai SDK."""
    rows = settings.overhead_rows
    what = f"{rows} rows, no latency, concurrency {CONCURRENCY}"
    bg_rate = Figure("1", f"batchgen run: jobs/s ({what})", "jobs/s")
    bg_cpu = Figure("1", "batchgen run: client CPU per job", "ms/job")
    bg_setup = Figure("1", f"batchgen run: loading + validating {rows} rows first", "s")
    sdk_rate = Figure("1", "openai SDK + Semaphore: jobs/s", "jobs/s")
    sdk_cpu = Figure("1", "openai SDK + Semaphore: client CPU per job", "ms/job")
    server_cpu = Figure("1", "simulated API CPU per job (its own process)", "ms/job")
    ratio = Figure("1", "throughput batchgen / openai SDK", "x", Goal(at_least=1.0))
    for rep in range(settings.reps):
        folder = _rep_dir(work, "overhead", rep)
        manifest = write_manifest(folder / "rows.csv", rows)
        # alternate the order so that drift (page cache, CPU clock) favours neither
        for client in CLIENTS if rep % 2 == 0 else CLIENTS[::-1]:
            with ServerProcess(ServerOptions()) as server:
                if client == "batchgen":
                    bg = run_batchgen(manifest, server.base_url, CONCURRENCY)
                    server_cpu.values.append(1000 * server.stats().cpu_seconds / rows)
                else:
                    sdk = run_openai_sdk(rows, server.base_url, CONCURRENCY)
        bg_rate.values.append(bg.jobs_per_second)
        bg_cpu.values.append(bg.cpu_ms_per_job)
        bg_setup.values.append(bg.setup_seconds)
        sdk_rate.values.append(sdk.jobs_per_second)
        sdk_cpu.values.append(sdk.cpu_ms_per_job)
        ratio.values.append(bg.jobs_per_second / sdk.jobs_per_second)
    return [bg_rate, bg_cpu, bg_setup, sdk_rate, sdk_cpu, server_cpu, ratio]


# --------------------------------------------------------------------------- 2. latency hiding


def latency_hiding(settings: Settings, work: Path) -> list[Figure]:
    """Item 2: throughput over the ideal (concurrency / latency) with 250 ms answers.

    Unpaced, batchgen's 64 workers send in waves that the single-threaded simulated API
    then serves one after another; the paced line (``--rpm`` 10% above the ideal rate)
    shows the same run with its sends spread evenly, and the "API in N processes" line the
    unpaced run against the simulated API in ``server_workers`` processes on one port.
    The "light server" lines run unpaced batchgen and the SDK against
    :mod:`benchmarks.light_server`, which only frames requests and answers creates, so
    that the server's CPU (reported per create) takes as little as possible of the cores
    the client runs on: the comparison that says whether the client hides the latency.
    """
    rows = settings.latency_waves * CONCURRENCY
    ideal = CONCURRENCY / LATENCY
    paced_rpm = round(ideal * 60 * 1.1)
    what = f"{rows} rows, {LATENCY * 1000:g} ms latency, concurrency {CONCURRENCY}"
    bg_rate = Figure("2", f"batchgen run, unpaced: jobs/s ({what})", "jobs/s")
    bg_share = Figure(
        "2", f"batchgen run, unpaced: share of ideal {ideal:g} jobs/s", "ratio", Goal(0.9)
    )
    paced_share = Figure("2", f"batchgen run, --rpm {paced_rpm}: share of ideal", "ratio")
    sdk_share = Figure("2", "openai SDK + Semaphore: share of ideal", "ratio")
    workers = settings.server_workers
    spread_server = Figure(
        "2",
        f"batchgen run, unpaced, API in {workers} processes: share of ideal",
        "ratio",
        Goal(0.9),
    )
    light = {
        "batchgen": Figure(
            "2", "batchgen run, unpaced, light server: share of ideal", "ratio", Goal(0.9)
        ),
        "sdk": Figure("2", "openai SDK + Semaphore, light server: share of ideal", "ratio"),
    }
    light_cpu = {
        "batchgen": Figure("2", "batchgen run, light server: client CPU per job", "ms/job"),
        "sdk": Figure("2", "openai SDK + Semaphore, light server: client CPU per job", "ms/job"),
    }
    server_cpu = {
        "batchgen": Figure("2", "light server's own CPU per create, batchgen's run", "ms/job"),
        "sdk": Figure("2", "light server's own CPU per create, the SDK's run", "ms/job"),
    }
    for rep in range(settings.reps):
        folder = _rep_dir(work, "latency", rep)
        unpaced = write_manifest(folder / "unpaced.csv", rows)
        paced = write_manifest(folder / "paced.csv", rows)
        lighter = write_manifest(folder / "workers.csv", rows)
        light_rows = write_manifest(folder / "light.csv", rows)
        with ServerProcess(ServerOptions(latency=LATENCY)) as server:
            bg = run_batchgen(unpaced, server.base_url, CONCURRENCY)
        with ServerProcess(ServerOptions(latency=LATENCY)) as server:
            spread = run_batchgen(paced, server.base_url, CONCURRENCY, rpm=paced_rpm)
        with ServerProcess(ServerOptions(latency=LATENCY)) as server:
            sdk = run_openai_sdk(rows, server.base_url, CONCURRENCY)
        with ServerProcess(ServerOptions(latency=LATENCY, workers=workers)) as server:
            unbound = run_batchgen(lighter, server.base_url, CONCURRENCY)
        # alternate the order so that drift (page cache, CPU clock) favours neither
        for client in CLIENTS if rep % 2 == 0 else CLIENTS[::-1]:
            manifest = light_rows if client == "batchgen" else None
            submission, server_ms = _against_light_server(manifest, rows)
            light[client].values.append(submission.jobs_per_second / ideal)
            light_cpu[client].values.append(submission.cpu_ms_per_job)
            server_cpu[client].values.append(server_ms)
        spread_server.values.append(unbound.jobs_per_second / ideal)
        bg_rate.values.append(bg.jobs_per_second)
        bg_share.values.append(bg.jobs_per_second / ideal)
        paced_share.values.append(spread.jobs_per_second / ideal)
        sdk_share.values.append(sdk.jobs_per_second / ideal)
    light_figures = [
        figures[client] for figures in (light, light_cpu, server_cpu) for client in CLIENTS
    ]
    return [bg_rate, bg_share, paced_share, sdk_share, spread_server, *light_figures]


def _against_light_server(manifest: Path | None, rows: int) -> tuple[Submission, float]:
    """One unpaced run against the light server: batchgen on ``manifest``, or the SDK when
    it is None; with the server's CPU per create, in ms. Raises unless the server answered
    exactly one create per row (and nothing else), so that no figure counts lost work."""
    with LightServerProcess(LATENCY) as server:
        if manifest is None:
            submission = run_openai_sdk(rows, server.base_url, CONCURRENCY)
        else:
            submission = run_batchgen(manifest, server.base_url, CONCURRENCY)
        stats = server.stats()
    if stats.requests_by_endpoint != {"create": rows}:
        raise RuntimeError(f"the light server saw {stats.requests_by_endpoint} for {rows} rows")
    return submission, 1000 * stats.cpu_seconds / rows


# --------------------------------------------------------------------------- 3. pacing


@dataclass(frozen=True)
class PacingCase:
    """``--rpm`` against a server enforcing ``server_rpm`` over a sliding ``window``."""

    name: str
    server_rpm: int
    window: float


def pacing(settings: Settings, work: Path) -> list[Figure]:
    """Item 3: ``--rpm 1200`` for a fixed time against servers enforcing a rate limit.

    A: the server allows 1,200/min over a 60 s window. B: it allows half of ``--rpm``; as a
    60 s window cannot fill within a 30 s run, B's server counts over a 10 s window
    (100 per 10 s), so that batchgen has to find the server's rate within the run.
    """
    seconds = settings.pacing_seconds
    figures: list[Figure] = []
    cases = (PacingCase("A", PACED_RPM, 60.0), PacingCase("B", PACED_RPM // 2, 10.0))
    for case in cases:
        limit = f"{case.server_rpm}/min over {case.window:g} s"
        head = f"{case.name}: --rpm {PACED_RPM}, server {limit}, {seconds:g} s"
        share = Figure("3", f"{head}: achieved / server limit", "%")
        refused = Figure("3", f"{case.name}: 429 answers", "count")
        if case.name == "A":
            share.goal, refused.goal = Goal(at_least=97.0), Goal(at_most=0)
        for rep in range(settings.reps):
            stats = _paced_run(work, case, seconds, rep)
            share.values.append(100 * _rate_per_minute(stats.created_at) / case.server_rpm)
            refused.values.append(stats.rate_limited)
        figures += [share, refused]
    return figures


def _paced_run(work: Path, case: PacingCase, seconds: float, rep: int) -> ServerStats:
    folder = _rep_dir(work, f"pacing-{case.name}", rep)
    rows = int(PACED_RPM * seconds / 60 * 1.5) + 10  # more than the time allows: stopped
    manifest = write_manifest(folder / "rows.csv", rows)
    options = ServerOptions(rate_limit_rpm=case.server_rpm, rate_window=case.window)
    with ServerProcess(options) as server:
        command = [*BATCHGEN, "run", str(manifest), "--base-url", server.base_url]
        command += ["--rpm", str(PACED_RPM), "--concurrency", str(CONCURRENCY), "--no-progress"]
        result = run_child(
            command, folder, env={"OPENAI_API_KEY": API_KEY}, interrupt_after=seconds
        )
        _expect_exit(result, (0, 1, 130), "paced run")
        return server.stats()


def _rate_per_minute(times: tuple[float, ...]) -> float:
    """Creates per minute between the first and the last one."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return 60 * (len(times) - 1) / (times[-1] - times[0])


# --------------------------------------------------------------------------- 4. scale


def scale(settings: Settings, work: Path) -> list[Figure]:
    """Item 4: a 100,000-row manifest: validation, a resume with nothing left to do, memory."""
    rows = settings.scale_rows
    folder = _rep_dir(work, "scale", 0)
    manifest = write_manifest(folder / "rows.csv", rows)
    results = folder / "rows.results.csv"
    write_done_ledger(manifest, results)
    validate_time = Figure("4", f"batchgen validate, {rows} rows: wall", "s")
    validate_rss = Figure("4", "batchgen validate: peak memory", "MB")
    resume_time = Figure(
        "4", f"batchgen run, all {rows} rows done (no-op resume): wall", "s", Goal(at_most=2)
    )
    resume_rss = Figure("4", "no-op resume: peak memory", "MB", Goal(at_most=150))
    for _rep in range(settings.reps):
        checked = run_child([*BATCHGEN, "validate", str(manifest)], folder)
        _expect_exit(checked, (0,), "validate")
        validate_time.values.append(checked.wall_seconds)
        validate_rss.values.append(checked.max_rss_mb)
        with ServerProcess(ServerOptions()) as server:
            command = [*BATCHGEN, "run", str(manifest), "--base-url", server.base_url]
            resumed = run_child(
                [*command, "--no-progress"], folder, env={"OPENAI_API_KEY": API_KEY}
            )
            sent = server.stats().create_requests
        _expect_exit(resumed, (0,), "no-op resume")
        if sent:
            raise RuntimeError(f"the no-op resume sent {sent} creates")
        resume_time.values.append(resumed.wall_seconds)
        resume_rss.values.append(resumed.max_rss_mb)
    return [validate_time, validate_rss, resume_time, resume_rss]


# --------------------------------------------------------------------------- 5. uploads


def uploads(settings: Settings, work: Path) -> list[Figure]:
    """Item 5: rows with distinct ~4 MB reference images: peak memory while uploading."""
    rows = settings.upload_rows
    folder = _rep_dir(work, "uploads", 0)
    images = write_noise_images(folder / "images", rows)
    manifest = write_manifest(folder / "rows.csv", rows, images=images)
    megabytes = sum((folder / name).stat().st_size for name in images) / rows / 1e6
    what = f"{rows} rows, {megabytes:.1f} MB images, concurrency {UPLOAD_CONCURRENCY}"
    rate = Figure("5", f"batchgen run, end to end: jobs/s ({what})", "jobs/s")
    rss = Figure("5", "batchgen run with uploads: peak memory", "MB", Goal(at_most=400))
    for rep in range(settings.reps):
        results = folder / f"results-{rep}.csv"
        with ServerProcess(ServerOptions()) as server:
            command = [*BATCHGEN, "run", str(manifest), "--base-url", server.base_url]
            command += ["--out", str(results), "--rpm", f"{UNPACED_RPM:.0f}", "--no-progress"]
            command += ["--concurrency", str(UPLOAD_CONCURRENCY)]
            result = run_child(command, folder, env={"OPENAI_API_KEY": API_KEY})
            created = server.stats().jobs_created
        _expect_exit(result, (0,), "upload run")
        if created != rows:
            raise RuntimeError(f"upload run created {created} jobs for {rows} rows")
        rate.values.append(rows / result.wall_seconds)
        rss.values.append(result.max_rss_mb)
    return [rate, rss]


def _expect_exit(result: ChildResult, codes: tuple[int, ...], what: str) -> None:
    if result.exit_code not in codes:
        tail = (result.stderr or result.stdout)[-2000:]
        raise RuntimeError(f"{what} exited {result.exit_code}:\n{tail}")
