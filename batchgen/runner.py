"""The run: manifest -> validated jobs -> plan -> submissions -> ledger events.

This is the library behind ``batchgen run`` and ``batchgen validate``; the CLI only
parses arguments into a :class:`RunRequest` and prints what comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from batchgen.errors import ManifestError, UsageError
from batchgen.follow.download import check_variants
from batchgen.follow.follower import FollowSettings, FollowTally, follow_jobs
from batchgen.follow.naming import check_template
from batchgen.jobs import InvalidRow
from batchgen.ledger import ATTENTION_STATUSES, Ledger, Status, default_results_path, read_ledger
from batchgen.manifest.loader import Manifest, load_manifest
from batchgen.output_paths import check_writable_folder
from batchgen.plan import PAID_STATUSES, Plan, PlanOptions, plan_run
from batchgen.profile import Profile, is_builtin, load_profile
from batchgen.progress import Progress
from batchgen.provider.client import VideoClient
from batchgen.provider.config import (
    BASE_URL_ENV,
    DEFAULT_API_KEY_ENV,
    ProviderRecord,
    Secret,
    UrlSource,
    allowed_base_urls,
    check_base_url,
    load_provider_record,
    provider_record_path,
    resolve_api_key,
    resolve_base_url,
    save_provider_record,
)
from batchgen.provider.pacing import Pacer, Throttle
from batchgen.signals import Stopper, signal_exit_code
from batchgen.submit import SubmitSettings, SubmitTally, Submitter, request_columns
from batchgen.validate.rows import ValidationReport, validate_manifest

logger = logging.getLogger("batchgen")

DEFAULT_PROFILE = "openai"
MOCK_API_KEY = Secret("mock-key")
MOCK_JOB_SECONDS = 2.0  # long enough to watch jobs move, short enough for a demo


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, already parsed; ``env`` is the process environment."""

    manifest: Path
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # holds the API key
    profile: str | None = None
    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    out: Path | None = None
    sheet: str | None = None
    image_root: Path | None = None
    skip_invalid: bool = False
    retry_rejected: bool = False
    dry_run: bool = False
    limit: int | None = None
    max_cost: float | None = None
    max_jobs: int | None = None
    mock: bool = False
    allow_insecure: bool = False
    allowed_base_urls: tuple[str, ...] = ()  # --allow-base-url: origins a manifest may name
    request_timeout: float = 120.0
    submit: SubmitSettings = field(default_factory=SubmitSettings)
    follow: FollowSettings | None = None  # poll (and download) while submitting
    interactive: bool = False


@dataclass(frozen=True)
class Prepared:
    """A manifest loaded and validated against its profile; nothing sent yet."""

    manifest: Manifest
    profile: Profile
    report: ValidationReport


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
        """Estimated USD of the rows ``keys`` that have a job id."""
        price, states = self.prepared.profile.estimate_cost, self.states
        return sum(price(states[k]) or 0.0 for k in keys if states.get(k, {}).get("job_id"))

    @property
    def sent_keys(self) -> list[str]:
        """Keys this run tried to create."""
        return [step.job.key for step in self.plan.to_submit]

    @property
    def exit_code(self) -> int:
        """0 all done, 1 some row needs attention, 4 a wait timed out, 130/143 interrupted."""
        if self.stopped_by is not None:
            return signal_exit_code(self.stopped_by)
        if any(self.statuses[s] for s in ATTENTION_STATUSES):
            return 1
        return 0 if self.follow is None else self.follow.exit_code


def prepare(
    manifest_path: Path,
    *,
    profile: str | None = None,
    sheet: str | None = None,
    image_root: Path | None = None,
) -> Prepared:
    """Load and validate a manifest. Raises :class:`ManifestError` only for unreadable input;
    row problems are in the report."""
    manifest = load_manifest(manifest_path, sheet=sheet)
    chosen = load_profile(profile or manifest.profile or DEFAULT_PROFILE)
    report = validate_manifest(manifest, chosen, image_root=image_root)
    # The jobs carry what each row sends; its raw cells are not needed after validation,
    # and for 100,000 rows they are ~60 MB.
    return Prepared(replace(manifest, rows=()), chosen, report)


def results_path_for(request: RunRequest, manifest: Manifest) -> Path:
    """``--out``, else the manifest's ``output:``, else ``<manifest>.results.csv`` beside it."""
    return request.out or manifest.output or default_results_path(request.manifest)


def run(request: RunRequest) -> RunResult:
    """Validate every row, then submit what the ledger says is still to do."""
    prepared = prepare(
        request.manifest,
        profile=request.profile,
        sheet=request.sheet,
        image_root=request.image_root,
    )
    report = prepared.report
    if report.problems and not request.skip_invalid:
        raise ManifestError(report.problems)
    results = results_path_for(request, prepared.manifest)
    base_url = "(simulated API)" if request.mock else _base_url(request, prepared)
    if request.dry_run:
        return _dry_run(request, prepared, results, base_url)
    api_key = MOCK_API_KEY if request.mock else resolve_api_key(request.env, request.api_key_env)
    if request.follow is not None:
        check_follow_settings(request.follow, ())
    with Ledger.open(results, passthrough=prepared.manifest.columns) as ledger:
        if request.follow is not None:
            check_follow_settings(request.follow, ledger.header)
        profile_name = request.profile or prepared.manifest.profile or DEFAULT_PROFILE
        recorded_url = "" if request.mock else base_url
        save_provider_record(results, ProviderRecord(profile_name, recorded_url))
        _record_invalid(ledger, report.invalid)
        plan = plan_run(report.jobs, ledger.states, _plan_options(request, prepared))
        _record_skips(ledger, plan)
        result = RunResult(results, plan, prepared, base_url=base_url)
        try:
            asyncio.run(_submit(request, prepared.profile, ledger, result, api_key))
        finally:
            result.statuses = _latest_statuses(prepared, ledger.states)
            result.states = dict(ledger.states)
            result.finished = time.time()
    return result


def _base_url(request: RunRequest, prepared: Prepared) -> str:
    """Where the key goes: README's order, a manifest's choice only where the operator allows."""
    manifest = prepared.manifest
    profile_by_operator = request.profile is not None or is_builtin(
        manifest.profile or DEFAULT_PROFILE
    )
    sources = (
        UrlSource(request.base_url, "--base-url", operator=True),
        UrlSource(manifest.base_url, f"{manifest.path.name}'s base_url:", operator=False),
        *_later_sources(request.env, prepared.profile, by_operator=profile_by_operator),
    )
    return _checked_url(sources, prepared.profile, request)


def _later_sources(
    env: Mapping[str, str], profile: Profile, *, by_operator: bool
) -> tuple[UrlSource, UrlSource]:
    """$OPENAI_BASE_URL, then the profile's default (the operator's only if they chose it)."""
    return (
        UrlSource(env.get(BASE_URL_ENV), f"${BASE_URL_ENV}", operator=True),
        UrlSource(
            profile.default_base_url,
            f"the default_base_url: of profile {profile.name}",
            operator=by_operator,
        ),
    )


def _checked_url(
    sources: Sequence[UrlSource], profile: Profile, request: RunRequest | FollowRequest
) -> str:
    allow_list = allowed_base_urls(request.allowed_base_urls, request.env)
    url = resolve_base_url(sources, allow_list, profile)
    check_base_url(url, allow_insecure=request.allow_insecure)
    return url


def _plan_options(request: RunRequest, prepared: Prepared) -> PlanOptions:
    profile = prepared.profile
    max_cost = request.max_cost if request.max_cost is not None else prepared.manifest.max_cost
    if max_cost is not None:
        unpriced = [j for j in prepared.report.jobs if profile.estimate_cost(j.fields) is None]
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
            changes = {**request_columns(step.job), "status": step.record_as}
            ledger.record(step.job.key, {**changes, "error_message": step.reason})


def _dry_run(request: RunRequest, prepared: Prepared, results: Path, base_url: str) -> RunResult:
    states = read_ledger(results)
    plan = plan_run(prepared.report.jobs, states, _plan_options(request, prepared))
    result = RunResult(results, plan, prepared, base_url=base_url, dry_run=True)
    result.statuses = _latest_statuses(prepared, states)
    result.states = states
    return result


def _record_invalid(ledger: Ledger, rows: tuple[InvalidRow, ...]) -> None:
    """Record rows skipped by ``--skip-invalid``, once per distinct problem."""
    for row in rows:
        message = "; ".join(row.messages)
        state = ledger.states.get(row.key, {})
        if state.get("status") in PAID_STATUSES:
            continue  # a create may have been made: it stays to be looked up, once valid again
        if state.get("job_id") or (state.get("status"), state.get("error_message")) == (
            Status.INVALID,
            message,
        ):
            continue
        changes = {**row.values, "row": row.row, "status": Status.INVALID, "error_message": message}
        ledger.record(row.key, changes)


def _latest_statuses(prepared: Prepared, states: Mapping[str, Mapping[str, str]]) -> Counter[str]:
    keys = [job.key for job in prepared.report.jobs] + [r.key for r in prepared.report.invalid]
    return Counter(states[key].get("status", "") if key in states else "not sent" for key in keys)


async def _submit(
    request: RunRequest, profile: Profile, ledger: Ledger, result: RunResult, api_key: Secret
) -> None:
    steps = result.plan.to_submit
    with Stopper(request.submit.grace_seconds) as stopper:
        async with _endpoint(request, profile, result.base_url) as base_url:
            result.base_url = base_url
            logger.info("sending %d rows to %s (profile %s)", len(steps), base_url, profile.name)
            async with _client(base_url, profile, api_key, request.request_timeout) as client:
                await _submit_and_follow(request, client, ledger, result, stopper.event)
    result.stopped_by = stopper.signal


async def _submit_and_follow(
    request: RunRequest, client: VideoClient, ledger: Ledger, result: RunResult, stop: asyncio.Event
) -> None:
    """Submit the plan; with ``follow``, poll and download at the same time as jobs appear.

    If following fails (a full disk, a refused key), submission stops as on a signal, so
    that creates in flight are still recorded, and the failure is raised after.
    """
    steps, settings = result.plan.to_submit, request.submit
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
                logger=logger,
            )
        except BaseException:
            stop.set()
            raise
        finally:
            followed.set()

    tasks = [submit()] + ([follow(request.follow)] if request.follow is not None else [])
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    result.this_run = progress.outcomes
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


@asynccontextmanager
async def _client(
    base_url: str, profile: Profile, api_key: Secret, timeout: float
) -> AsyncIterator[VideoClient]:
    """One HTTP session for the whole run."""
    async with aiohttp.ClientSession() as session:
        yield VideoClient(session, base_url, profile, api_key, timeout=timeout)


@asynccontextmanager
async def _endpoint(request: RunRequest, profile: Profile, base_url: str) -> AsyncIterator[str]:
    """The provider's base URL, or that of a simulated API started for this run."""
    if not request.mock:
        yield base_url
        return
    from batchgen.mock.server import MockConfig, running_mock

    config = MockConfig(profile=profile, job_duration=MOCK_JOB_SECONDS)
    async with running_mock(config) as mock:
        yield mock.base_url


# ---------------------------------------------------------------- poll and download


@dataclass(frozen=True)
class FollowRequest:
    """``batchgen poll`` / ``batchgen download``: follow the jobs of a results file."""

    results: Path
    settings: FollowSettings
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # holds the API key
    profile: str | None = None
    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    allow_insecure: bool = False
    allowed_base_urls: tuple[str, ...] = ()  # --allow-base-url: origins the record may name
    request_timeout: float = 120.0
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
    if not request.results.exists():
        raise UsageError(f"{request.results}: no such results file")
    recorded = load_provider_record(request.results)
    if recorded is not None and not recorded.base_url and not request.base_url:
        raise UsageError(
            f"{request.results}: its jobs were sent to the simulated API of a finished "
            "`run --mock`, which is gone; use `run --mock --wait` to follow jobs in one go"
        )
    profile = profile_for_results(request.results, request.profile)
    url = _follow_url(request, recorded, profile)
    api_key = resolve_api_key(request.env, request.api_key_env)
    check_follow_settings(request.settings, ())
    with Ledger.open(request.results) as ledger:
        check_follow_settings(request.settings, ledger.header)
        return asyncio.run(_follow(request, profile, url, api_key, ledger))


def _follow_url(request: FollowRequest, recorded: ProviderRecord | None, profile: Profile) -> str:
    """Where ``run`` sent the jobs, by the record beside the results, which is a file like
    any other: its address is used only where the operator chose or allowed it."""
    recorded_profile = recorded.profile if recorded else DEFAULT_PROFILE
    record = provider_record_path(request.results).name
    sources = (
        UrlSource(request.base_url, "--base-url", operator=True),
        UrlSource(recorded.base_url if recorded else None, record, operator=False),
        *_later_sources(
            request.env,
            profile,
            by_operator=request.profile is not None or is_builtin(recorded_profile),
        ),
    )
    return _checked_url(sources, profile, request)


def profile_for_results(results: Path, name: str | None = None) -> Profile:
    """``name``'s profile, else the one the run of ``results`` used, else the default."""
    recorded = load_provider_record(results)
    return load_profile(name or (recorded.profile if recorded else None) or DEFAULT_PROFILE)


def check_follow_settings(settings: FollowSettings, columns: Sequence[str]) -> None:
    """Refuse a bad variant, file-name template or download folder before anything is sent."""
    check_variants(settings.variants)
    if settings.name_template is not None and columns:
        check_template(settings.name_template, columns)
    if settings.download_dir is not None:
        check_writable_folder(settings.download_dir, "the downloaded videos")


async def _follow(
    request: FollowRequest, profile: Profile, url: str, api_key: Secret, ledger: Ledger
) -> FollowResult:
    tally = FollowTally(interrupted=True)  # what is reported if a second signal ends it
    with Stopper(request.settings.grace_seconds) as stopper:
        async with _client(url, profile, api_key, request.request_timeout) as client:
            tally = await follow_jobs(
                client,
                ledger,
                request.settings,
                stopper.event,
                interactive=request.interactive,
                logger=logger,
            )
    return FollowResult(request.results, tally, stopper.signal)
