"""Item 7, the night: ``batchgen run --rpm R --wait --download DIR`` end to end, every other
setting at its default, against a simulated provider that accepts R creates a minute and
takes a while over each job; the openai SDK's ``create_and_poll`` + ``download_content``
under a semaphore of 16 beside it.

The makespan runs from the first create the server saw to the last file written in the
download folder (its mtime). The ideal is the same night with nothing lost: the k-th create
sent at exactly k x 60/R and each job downloaded the moment it is done, i.e. the maximum
over jobs of k x 60/R plus that job's duration (durations are drawn per creation order, so
every client's night has the same ideal). Requests per video count everything the server
saw (creates, status checks, list pages, downloads) over the rows, with and without the
preview downloads (a thumbnail comes by default where the profile says previews exist).

A long scenario is compressed by a factor F: the provider's durations, refresh period and
rate window divided by F, R multiplied by it, and batchgen's time-based defaults scaled to
match (seconds divided by F, per-minute rates multiplied by it), read from ``batchgen run``'s
own options so that the bench follows the CLI as it changes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from batchgen.profile_files import load_profile
from benchmarks.clients import SDK_NIGHT_CONCURRENCY, run_openai_sdk_night
from benchmarks.data import write_manifest
from benchmarks.measure import Figure, Goal, run_child
from benchmarks.server import API_KEY, ServerOptions, ServerProcess, ServerStats

BATCHGEN = (sys.executable, "-m", "batchgen")
LISTS, CANNOT_LIST = "openai", "new-api"
PROFILES = (LISTS, CANNOT_LIST)
SDK_POLL_MS = 1000  # create_and_poll's own interval when the server sends no hint
#: Options that only bound a wait on a failure (a healthy night never reaches them): not
#: scaled, as shrinking them would only add spurious timeouts on a loaded machine.
LIMITS = frozenset({"request_timeout", "give_up_after", "grace", "timeout"})


@dataclass(frozen=True)
class Night:
    """One night: rows, the provider's create limit (per minute) and job durations, in real
    time; ``compress`` is F (1: real time)."""

    tag: str
    title: str
    rows: int
    rpm: float
    duration: float  # the longest job's seconds (every job's, when ``shortest`` is None)
    shortest: float | None = None
    compress: float = 1.0

    @property
    def limit(self) -> float:
        """Creates per minute on the compressed clock."""
        return self.rpm * self.compress

    def server(self, profile: str) -> ServerOptions:
        """The simulated provider for this night, on the compressed clock."""
        refresh = load_profile(profile).refresh_seconds
        return ServerOptions(
            profile=profile,
            job_duration=self.duration / self.compress,
            job_duration_min=None if self.shortest is None else self.shortest / self.compress,
            refresh_seconds=refresh / self.compress if refresh else None,
            rate_limit_rpm=round(self.limit),
            rate_window=60.0 / self.compress,
        )


def nights(rows: int | None = None, speedup: float = 1.0) -> tuple[Night, ...]:
    """The issue's two scenarios; ``rows`` and a further ``speedup`` for ``--quick``."""
    return (
        Night("A", "200 rows, 600 rpm, 10 s jobs", rows or 200, 600, 10.0, compress=speedup),
        # OpenAI's tier 3 allowed sora-2 125 creates a minute; ~13 min of real time, so F=13
        Night(
            "B", "1,000 rows, tier-3 sora-2 125 rpm, jobs uniform in 60-300 s",
            rows or 1000, 125, 300.0, 60.0, compress=13 * speedup,
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Outcome:
    """What one client's night cost, on the compressed clock."""

    makespan: float
    ideal: float
    requests: int
    previews: int
    rate_limited: int
    unfinished: str = ""  # why the night was cut short (killed at the bench's timeout)


def _outcome(stats: ServerStats, night: Night, folder: Path, killed: str = "") -> Outcome:
    videos = [p for p in folder.rglob("*.mp4") if p.is_file()]
    if killed:  # the makespan is then at least the time until the kill
        killed = f"{killed} with {len(videos)}/{night.rows} videos"
    elif len(videos) != night.rows or stats.jobs_created != night.rows:
        raise RuntimeError(
            f"night {night.tag}: {len(videos)} videos and {stats.jobs_created} jobs "
            f"for {night.rows} rows"
        )
    files = [p.stat().st_mtime for p in folder.rglob("*") if p.is_file()]
    finished = time.time() if killed or not files else max(files)
    spacing = 60.0 / night.limit
    ideal = max(k * spacing + job.duration for k, job in enumerate(stats.jobs))
    return Outcome(
        makespan=finished - min(job.created for job in stats.jobs),
        ideal=ideal,
        requests=stats.requests,
        previews=stats.requests_by_endpoint.get("preview", 0),
        rate_limited=stats.rate_limited,
        unfinished=killed,
    )


def scaled_defaults(factor: float) -> list[str]:
    """``batchgen run``'s pacing defaults on a clock ``factor`` times faster: options in
    seconds divided by it, per-minute rates multiplied (``--rpm`` is the night's own; the
    :data:`LIMITS` are left alone)."""
    if factor == 1:
        return []
    from batchgen.cli import cli  # the real command's options, as they are today

    command = cli.commands["run"] if isinstance(cli, click.Group) else cli
    flags: list[str] = []
    for param in command.params:
        default, text = param.default, (getattr(param, "help", None) or "").lower()
        if param.name == "rpm" or param.name in LIMITS or type(default) is not float:
            continue
        if "per minute" in text:
            flags += [max(param.opts, key=len), f"{default * factor:g}"]
        elif "second" in text:
            flags += [max(param.opts, key=len), f"{default / factor:g}"]
    return flags


def _profile_arg(profile: str, factor: float, folder: Path) -> str:
    """The profile as passed: its name, or a file with its refresh period compressed too
    (batchgen never polls faster than the profile's ``refresh_seconds``)."""
    refresh = load_profile(profile).refresh_seconds
    if factor == 1 or not refresh:
        return profile
    path = folder / f"{profile}-x{factor:g}.yaml"
    path.write_text(
        f"name: {profile}\nextends: {profile}\nrefresh_seconds: {refresh / factor!r}\n",
        encoding="utf-8",
    )
    return str(path)


def _batchgen_night(night: Night, profile: str, folder: Path) -> Outcome:
    manifest = write_manifest(folder / "night.csv", night.rows)
    videos = folder / "videos"
    with ServerProcess(night.server(profile)) as server:
        command = [*BATCHGEN, "run", str(manifest), "--base-url", server.base_url]
        command += ["--profile", _profile_arg(profile, night.compress, folder)]
        command += ["--rpm", f"{night.limit:g}", "--wait", "--download", str(videos)]
        command += scaled_defaults(night.compress)
        ideal = (night.rows - 1) * 60 / night.limit + night.duration / night.compress
        limit = 20 * ideal + 120
        try:
            result = run_child(command, folder, env={"OPENAI_API_KEY": API_KEY}, timeout=limit)
        except RuntimeError:  # killed at the timeout: report how far it got
            return _outcome(server.stats(), night, videos, killed=f"killed at {limit:.0f} s")
        if result.exit_code != 0:
            tail = (result.stderr or result.stdout)[-2000:]
            raise RuntimeError(f"night {night.tag} {profile}: exit {result.exit_code}\n{tail}")
        stats = server.stats()
    return _outcome(stats, night, videos)


def _sdk_night(night: Night, folder: Path) -> Outcome:
    videos = folder / "videos"
    videos.mkdir(parents=True)
    poll_ms = None if night.compress == 1 else max(1, round(SDK_POLL_MS / night.compress))
    with ServerProcess(night.server(LISTS)) as server:
        run_openai_sdk_night(night.rows, server.base_url, night.limit, videos, poll_ms)
        stats = server.stats()
    return _outcome(stats, night, videos)


# --------------------------------------------------------------------------- the table


def night(work: Path, chosen: tuple[Night, ...], *, sdk: bool = True) -> list[Figure]:
    """Item 7: each night, batchgen on both profiles and (``sdk``) the SDK where it can
    follow."""
    figures: list[Figure] = []
    for scenario in chosen:
        base = work / f"night-{scenario.tag}"
        runs = [
            (f"{p}, batchgen", p, _batchgen_night(scenario, p, _fresh(base / p))) for p in PROFILES
        ]
        if sdk:
            baseline = _sdk_night(scenario, _fresh(base / "sdk"))
            who = f"{LISTS}, SDK + Semaphore({SDK_NIGHT_CONCURRENCY})"
            runs.insert(1, (who, "sdk", baseline))
        ideal = Figure("7", f"{scenario.tag}: ideal makespan ({_clock(scenario)})", "s")
        ideal.values.append(runs[0][2].ideal)
        figures.append(ideal)
        for who, profile, outcome in runs:
            figures += _figures(scenario, who, profile, outcome)
    return figures


def _figures(scenario: Night, who: str, profile: str, got: Outcome) -> list[Figure]:
    head = f"{scenario.tag} {who}" + (f" [UNFINISHED: {got.unfinished}]" if got.unfinished else "")
    lists = profile != CANNOT_LIST
    refresh = load_profile(CANNOT_LIST).refresh_seconds / scenario.compress
    with_previews = 2.1 + 1 if lists else 3.0  # +1: a preview downloaded by default
    figures = [
        Figure("7", f"{head}: makespan", "s", values=[got.makespan]),
        Figure("7", f"{head}: makespan / ideal", "x", Goal(at_most=1.1) if lists else None),
    ]
    figures[-1].values.append(got.makespan / got.ideal)
    if not lists:
        bound = Figure("7", f"{head}: makespan / (ideal + refresh)", "x", Goal(at_most=1.1))
        bound.values.append(got.makespan / (got.ideal + refresh))
        figures.append(bound)
    rows = scenario.rows
    apart = Figure("7", f"{head}: requests per video, previews apart", "req/video")
    apart.goal = Goal(at_most=2.1 if lists else 3.0)
    apart.values.append((got.requests - got.previews) / rows)
    every = Figure("7", f"{head}: requests per video, with previews", "req/video")
    every.goal = Goal(at_most=with_previews)
    every.values.append(got.requests / rows)
    refused = Figure("7", f"{head}: 429 answers", "count", values=[got.rate_limited])
    return [*figures, apart, every, refused]


def _clock(scenario: Night) -> str:
    return "real time" if scenario.compress == 1 else f"time / {scenario.compress:g}"


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def notes(chosen: tuple[Night, ...]) -> list[str]:
    """What the item-7 lines mean: the scenarios, the compression, the flags scaled."""
    lines = []
    for scenario in chosen:
        what = f"7  {scenario.tag}: {scenario.rows} rows; {scenario.title.split(', ', 1)[1]}"
        if scenario.compress == 1:
            lines.append(f"{what}; real time, every batchgen setting at its default but --rpm")
            continue
        factor = scenario.compress
        flags = " ".join(scaled_defaults(factor))
        lines.append(
            f"{what}; time compressed x{factor:g}: --rpm {scenario.limit:g}, job durations, "
            f"the rate window and new-api's refresh period (a profile file extending it) "
            f"divided by {factor:g}, the SDK's 1 s poll interval too; batchgen's pacing "
            f"defaults scaled: {flags}. Not scaled: the timeouts (--request-timeout, "
            "--give-up-after, --grace: a healthy night never reaches them), timing constants "
            "inside batchgen that have no flag, and process start-up."
        )
    lines.append(
        "7  makespan: first create seen by the server to the last file written; "
        "the SDK baseline runs on the openai profile only (create_and_poll waits while "
        "the status is queued/in_progress, and new-api's QUEUED/SUCCESS words end it at once)"
    )
    return lines
