"""The run: manifest -> validated jobs -> plan -> submissions -> ledger events.

This is the library behind ``batchgen run`` and ``batchgen validate``; the CLI only
parses arguments into a :class:`RunRequest` and prints what comes back.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from batchgen.columns import invalid_columns, skipped_columns
from batchgen.errors import ManifestError, UsageError
from batchgen.follow.download import check_variants
from batchgen.follow.follower import FollowSettings, follow_jobs
from batchgen.follow.naming import check_template
from batchgen.follow.tally import FollowTally
from batchgen.jobs import InvalidRow
from batchgen.ledger import Ledger, default_results_path, read_ledger
from batchgen.manifest import Manifest, load_manifest
from batchgen.output_paths import check_writable_folder
from batchgen.plan import Plan, PlanOptions, plan_run
from batchgen.profile import Profile
from batchgen.profile_files import load_profile
from batchgen.progress import Progress
from batchgen.provider.client import VideoClient
from batchgen.provider.config import UrlSource, save_provider_record
from batchgen.provider.pacing import Pacer, Throttle
from batchgen.provider.resolve import (
    Provider,
    ProviderOptions,
    profile_name,
    provider_for_results,
    provider_for_run,
)
from batchgen.running_slots import running_cap
from batchgen.signals import Stopper, signal_exit_code
from batchgen.status import MAYBE_PAID, NOT_SENT, SUBMIT_ATTENTION, Status
from batchgen.submit import SubmitSettings, SubmitTally, Submitter
from batchgen.validate.rows import Validation, validate_manifest

logger = logging.getLogger("batchgen")

MOCK_JOB_SECONDS = 2.0  # long enough to watch jobs move, short enough for a demo


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, already parsed (the process environment is in ``provider``)."""

    manifest: Path
    provider: ProviderOptions = field(default_factory=ProviderOptions)
    out: Path | None = None
    configured_out: Path | None = None  # the project file's output, after the manifest's
    sheet: str | None = None
    image_root: Path | None = None
    skip_invalid: bool = False
    retry_rejected: bool = False
    dry_run: bool = False
    limit: int | None = None
    max_cost: float | None = None
    max_jobs: int | None = None
    mock: bool = False
    submit: SubmitSettings = field(default_factory=SubmitSettings)
    max_running: int | None = None  # --max-running: None the profile's cap, 0 none
    follow: FollowSettings | None = None  # poll (and download) while submitting
    interactive: bool = False


@dataclass(frozen=True)
class Prepared:
    """A manifest loaded and validated against its profile; nothing sent yet."""

    manifest: Manifest
    profile: Profile
    validation: Validation
    profile_name: str  # the name or path ``profile`` was loaded by, for the provider record


@dataclass
class RunResult:
    """What a run did, for the summary and the exit code."""

    results_path: Path
    plan: Plan
    prepared: Prepared
    base_url: str = ""
    statuses: Counter[str] = field(default_factory=Counter)  # latest state of every row
    this_run: Counter[str] = field(default_factory=Counter)  # outcomes of this run's sends
    tally: SubmitTally = field(default_factory=SubmitTally)
    follow: FollowTally | None = None  # with --wait or --download
    stopped_by: int | None = None  # the signal that stopped the run, if any
    dry_run: bool = False
    started: float = field(default_factory=time.time)
    finished: float | None = None

    states: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # the ledger at the end

    def cost_of(self, keys: Iterable[str]) -> float:
        """Estimated USD of the rows ``keys`` that have a job id (0 without prices)."""
        states = (self.states[k] for k in keys if k in self.states)
        return self.prepared.profile.cost_of_jobs(states) or 0.0

    @property
    def sent_keys(self) -> list[str]:
        """Keys this run tried to create."""
        return [step.job.key for step in self.plan.to_submit]

    @property
    def exit_code(self) -> int:
        """0 all done, 1 some row needs attention, 4 a wait timed out, 130/143 interrupted."""
        if self.stopped_by is not None:
            return signal_exit_code(self.stopped_by)
        if any(self.statuses[s] for s in SUBMIT_ATTENTION):
            return 1
        return 0 if self.follow is None else self.follow.exit_code


def prepare(
    manifest_path: Path,
    *,
    profile: str | None = None,
    sheet: str | None = None,
    image_root: Path | None = None,
    configured: str | None = None,  # a config file's profile, after the manifest's
) -> Prepared:
    """Load and validate a manifest. Raises :class:`ManifestError` only for unreadable input;
    row problems are in the validation."""
    with _no_collections():
        manifest = load_manifest(manifest_path, sheet=sheet)
        name = profile_name(profile, manifest.profile, configured)
        chosen = load_profile(name)
        validation = validate_manifest(manifest, chosen, image_root=image_root)
    # The jobs carry what each row sends; its raw cells are not needed after validation,
    # and for 100,000 rows they are ~60 MB.
    return Prepared(replace(manifest, rows=()), chosen, validation, name)


@contextmanager
def _no_collections() -> Iterator[None]:
    """Build a run's long-lived objects (rows, jobs, the ledger's states) with the cyclic
    garbage collector paused.

    They form no cycles (reference counting frees them), but the collector, run every few
    hundred allocations, would go over everything built so far again and again: 0.8 s of a
    3.6 s resume of 100,000 rows. Collection resumes after, even on an error.
    """
    if not gc.isenabled():  # paused already (an outer pause, or the caller's choice)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def _frozen() -> Iterator[None]:
    """Keep what exists now (the jobs, the ledger's states) out of the cyclic collector's
    passes while the run sends and follows, given back to it when the run ends.

    They live until then anyway; left in, the first collections after the pause would go
    over all of them (0.2 s for 100,000 rows), and every full one during a night again.
    """
    if gc.get_freeze_count():  # someone froze objects already: theirs to give back, not ours
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def results_path_for(request: RunRequest, manifest: Manifest) -> Path:
    """``--out``, else the manifest's ``output:``, else the project file's, else
    ``<manifest>.results.csv`` beside it."""
    configured = request.configured_out
    return request.out or manifest.output or configured or default_results_path(request.manifest)


def run(request: RunRequest) -> RunResult:
    """Validate every row, then submit what the ledger says is still to do."""
    prepared = prepare(
        request.manifest,
        profile=request.provider.profile,
        sheet=request.sheet,
        image_root=request.image_root,
        configured=request.provider.configured_profile,
    )
    validation = prepared.validation
    if validation.problems and not request.skip_invalid:
        raise ManifestError(validation.problems)
    results = results_path_for(request, prepared.manifest)
    provider = _provider(request, prepared)
    if request.dry_run:
        return _dry_run(request, prepared, results, provider.base_url)
    if request.follow is not None:
        check_follow_settings(request.follow, prepared.profile)
    with _no_collections():
        ledger = Ledger.open(results, passthrough=prepared.manifest.columns)
    with ledger:
        if request.follow is not None:
            check_name_template(request.follow, ledger.header)
        if provider.record is not None:
            save_provider_record(results, provider.record)
        with _no_collections():
            _record_invalid(ledger, validation.invalid)
            plan = plan_run(validation.jobs, ledger.states, _plan_options(request, prepared))
            _record_skips(ledger, plan)
        result = RunResult(results, plan, prepared, base_url=provider.base_url)
        try:
            with _frozen():
                asyncio.run(_submit(request, provider, ledger, result))
        finally:
            result.statuses = _latest_statuses(prepared, ledger.states)
            result.states = dict(ledger.states)
            result.finished = time.time()
    return result


def _provider(request: RunRequest, prepared: Prepared) -> Provider:
    manifest = prepared.manifest
    return provider_for_run(
        request.provider,
        prepared.profile,
        manifest_url=UrlSource(
            manifest.base_url, f"{manifest.path.name}'s base_url:", operator=False
        ),
        name=prepared.profile_name,
        mock=request.mock,
        dry_run=request.dry_run,
    )


def _plan_options(request: RunRequest, prepared: Prepared) -> PlanOptions:
    profile = prepared.profile
    max_cost = request.max_cost if request.max_cost is not None else prepared.manifest.max_cost
    if max_cost is not None:
        unpriced = [j for j in prepared.validation.jobs if profile.estimate_cost(j.fields) is None]
        if unpriced:
            job = unpriced[0]
            raise UsageError(
                f"--max-cost: the {profile.name} profile has no price for {job.fields['model']} "
                f"at {job.fields['size']} (row {job.row}); add prices: to the profile"
            )
    return PlanOptions(
        retry_rejected=request.retry_rejected,
        limit=request.limit,
        max_cost=max_cost,
        max_jobs=request.max_jobs,
        price=profile.estimate_cost,
        following=request.follow is not None and request.follow.wait,
    )


def _record_skips(ledger: Ledger, plan: Plan) -> None:
    """Write rows the budget held back, so the results file says why they were not sent."""
    for step in plan.steps:
        if step.record_as and ledger.states.get(step.job.key, {}).get("status") != step.record_as:
            ledger.record(step.job.key, skipped_columns(step.job, step.record_as, step.reason))


def _dry_run(request: RunRequest, prepared: Prepared, results: Path, base_url: str) -> RunResult:
    with _no_collections():
        states = read_ledger(results)
        plan = plan_run(prepared.validation.jobs, states, _plan_options(request, prepared))
    result = RunResult(results, plan, prepared, base_url=base_url, dry_run=True)
    result.statuses = _latest_statuses(prepared, states)
    result.states = states
    return result


def _record_invalid(ledger: Ledger, rows: tuple[InvalidRow, ...]) -> None:
    """Record rows skipped by ``--skip-invalid``, once per distinct problem."""
    for row in rows:
        message = "; ".join(row.messages)
        state = ledger.states.get(row.key, {})
        if state.get("status") in MAYBE_PAID:
            continue  # a create may have been made: it stays to be looked up, once valid again
        if state.get("job_id") or (state.get("status"), state.get("error_message")) == (
            Status.INVALID,
            message,
        ):
            continue
        ledger.record(row.key, invalid_columns(row, message))


def _latest_statuses(prepared: Prepared, states: Mapping[str, Mapping[str, str]]) -> Counter[str]:
    keys = [job.key for job in prepared.validation.jobs] + [
        r.key for r in prepared.validation.invalid
    ]
    return Counter(states[key].get("status", "") if key in states else NOT_SENT for key in keys)


async def _submit(
    request: RunRequest, provider: Provider, ledger: Ledger, result: RunResult
) -> None:
    steps = result.plan.to_submit
    with Stopper(request.submit.grace_seconds) as stopper:
        async with _endpoint(provider) as started:
            result.base_url = started.base_url
            logger.info(
                "sending %d rows to %s (profile %s)",
                len(steps),
                started.base_url,
                started.profile.name,
            )
            async with _client(started) as client:
                await _submit_and_follow(request, client, ledger, result, stopper.event)
    result.stopped_by = stopper.signal


async def _submit_and_follow(
    request: RunRequest, client: VideoClient, ledger: Ledger, result: RunResult, stop: asyncio.Event
) -> None:
    """Submit the plan; with ``follow``, poll and download at the same time as jobs appear.

    If following fails (a full disk, a refused key), submission stops as on a signal, so
    that creates in flight are still recorded, and the failure is raised after.
    """
    steps = result.plan.to_submit
    cap = running_cap(request.max_running, result.prepared.profile)
    settings = replace(request.submit, max_running=cap)
    progress = Progress(len(steps), "submit", interactive=request.interactive, logger=logger)
    incoming: asyncio.Queue[str | None] | None = None if request.follow is None else asyncio.Queue()
    followed = asyncio.Event()
    throttle = Throttle(Pacer(settings.rpm), settings.concurrency, stop=stop)
    submitter = Submitter(
        client,
        ledger,
        throttle,
        settings,
        progress,
        stop,
        on_submitted=incoming.put_nowait if incoming else None,
        following_ended=followed.is_set,
    )

    async def submit() -> None:
        try:
            result.tally = await submitter.run(steps)
        finally:
            progress.close()
            if incoming is not None:
                incoming.put_nowait(None)  # no more jobs will come

    async def follow(settings: FollowSettings) -> None:
        try:
            result.follow = await follow_jobs(
                client,
                ledger,
                settings,
                stop,
                incoming=incoming,
                interactive=request.interactive,
                expected=len(steps),  # the poll bar's total, known up front
                logger=logger,
                on_given_up=submitter.given_up,  # its running slot is free
            )
        except BaseException:
            stop.set()
            raise
        finally:
            followed.set()
            submitter.end_following()  # rows waiting for a running slot stop waiting

    # with a cap on running jobs, a job seen done at once frees a slot for the next create
    following = None if request.follow is None else replace(request.follow, sure_looks=not cap)
    tasks = [submit()] + ([follow(following)] if following is not None else [])
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    result.this_run = progress.outcomes
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


@asynccontextmanager
async def _client(provider: Provider) -> AsyncIterator[VideoClient]:
    """One HTTP session for the whole run."""
    async with aiohttp.ClientSession() as session:
        yield VideoClient(
            session,
            provider.base_url,
            provider.profile,
            provider.key(),
            timeout=provider.request_timeout,
        )


@asynccontextmanager
async def _endpoint(provider: Provider) -> AsyncIterator[Provider]:
    """The provider, or a simulated API started for this run in its place."""
    if not provider.mock:
        yield provider
        return
    from batchgen.mock import MockConfig, running_mock

    # The profile's flavour, with its refresh tick shortened as the jobs are: a demo's pace.
    refresh = min(provider.profile.refresh_seconds, MOCK_JOB_SECONDS / 4)
    config = MockConfig.for_profile(
        provider.profile, job_duration=MOCK_JOB_SECONDS, refresh_seconds=refresh
    )
    async with running_mock(config) as mock:
        # polled at the simulated pace, as the real one would be at the real provider's
        profile = replace(provider.profile, refresh_seconds=refresh)
        yield replace(provider, base_url=mock.base_url, profile=profile)


# ---------------------------------------------------------------- poll and download


@dataclass(frozen=True)
class FollowRequest:
    """``batchgen poll`` / ``batchgen download``: follow the jobs of a results file."""

    results: Path
    settings: FollowSettings
    provider: ProviderOptions = field(default_factory=ProviderOptions)
    interactive: bool = False


@dataclass
class FollowResult:
    """What following came to."""

    results_path: Path
    tally: FollowTally
    stopped_by: int | None = None

    @property
    def exit_code(self) -> int:
        """130/143 stopped; 1 a job failed, expired or was lost; 4 a wait timed out; else 0."""
        return signal_exit_code(self.stopped_by) if self.stopped_by else self.tally.exit_code


def follow_results(request: FollowRequest) -> FollowResult:
    """Poll every unfinished job of a results file, and download the finished ones if asked."""
    provider = provider_for_results(request.provider, request.results)
    check_follow_settings(request.settings, provider.profile)
    with Ledger.open(request.results) as ledger:
        check_name_template(request.settings, ledger.header)
        return asyncio.run(_follow(request, provider, ledger))


def check_follow_settings(settings: FollowSettings, profile: Profile) -> None:
    """Refuse a bad variant (or one ``profile`` has not) or download folder before the
    results file is opened."""
    check_variants(settings.variants, profile)
    if settings.download_dir is not None:
        check_writable_folder(settings.download_dir, "the downloaded videos")


def check_name_template(settings: FollowSettings, columns: Sequence[str]) -> None:
    """Refuse a file-name template naming a column the results file does not have."""
    if settings.name_template is not None and columns:
        check_template(settings.name_template, columns)


async def _follow(request: FollowRequest, provider: Provider, ledger: Ledger) -> FollowResult:
    tally = FollowTally(interrupted=True)  # what is reported if a second signal ends it
    with Stopper(request.settings.grace_seconds) as stopper:
        async with _client(provider) as client:
            tally = await follow_jobs(
                client,
                ledger,
                request.settings,
                stopper.event,
                interactive=request.interactive,
                logger=logger,
            )
    return FollowResult(request.results, tally, stopper.signal)
