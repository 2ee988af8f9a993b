"""The command line's option groups: click options that reach a command as typed dataclasses.

Each group's click options are declared once and shared by the commands that take them;
:func:`collect` hands a command its options as one value, so every use of an option is an
attribute mypy checks, not a string key.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from batchgen.cli.configured import config_of_invocation
from batchgen.errors import UsageError
from batchgen.follow.follower import DEFAULT_STATUS_RPM, FollowSettings
from batchgen.progress import BarSafeHandler
from batchgen.provider.resolve import ProviderOptions
from batchgen.provider.retry import DEFAULT_GIVE_UP_AFTER, RetrySettings
from batchgen.runner import FollowRequest, RunRequest
from batchgen.submit import SubmitSettings

F = TypeVar("F", bound=Callable[..., Any])
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
NEW_FILE = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(file_okay=False, path_type=Path)
SECONDS = click.FloatRange(0, min_open=True)


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click decorators as one, applied in the order written."""

    def apply(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def collect(param: str, build: Callable[..., object]) -> Callable[[F], F]:
    """Pass the command ``build(...)`` of the options named by ``build``'s parameters, as
    its parameter ``param``, instead of those options one by one.

    Below other groups' decorators, ``build`` may take their values (``provider`` …):
    the outer ones collect first.
    """
    names = tuple(inspect.signature(build).parameters)

    def apply(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # a parameter with a default may have no option: build's default applies
            picked = {name: kwargs.pop(name) for name in names if name in kwargs}
            return command(*args, **kwargs, **{param: build(**picked)})

        return cast(F, wrapper)

    return apply


@dataclass(frozen=True)
class Workers:
    """How requests are sent: how many at once, how often retried, and the grace they
    have to finish after a signal."""

    concurrency: int
    retry: RetrySettings
    grace: float


def _workers(
    concurrency: int, max_attempts: int, backoff: float, grace: float, give_up_after: float
) -> Workers:
    retry = RetrySettings(
        max_attempts=max_attempts, backoff_base=backoff, give_up_after=give_up_after
    )
    return Workers(concurrency, retry, grace)


def _provider(
    profile: str | None,
    base_url: str | None,
    api_key_env: str,
    allow_insecure: bool,
    allowed_base_urls: tuple[str, ...],
    request_timeout: float,
) -> ProviderOptions:
    # --profile and --base-url are declared by each command (their help differs) and
    # collected here; the config files add what sits below the flags in the precedence
    config = config_of_invocation()
    return ProviderOptions(
        env=dict(os.environ),
        profile=profile,
        base_url=base_url,
        api_key_env=api_key_env,
        allow_insecure=allow_insecure,
        allowed_base_urls=(*allowed_base_urls, *config.allowed_base_urls()),
        request_timeout=request_timeout,
        configured_profile=config.text("profile"),
        configured_profile_trusted=config.profile_trusted,
        configured_urls=config.url_sources(),
    )


@dataclass(frozen=True)
class Output:
    """Where the command's log lines go: ``--progress`` and ``--log-file``."""

    progress: bool | None
    log_file: Path | None

    def configure(self) -> bool:
        """Set up logging (stderr, and --log-file); True when a person is watching a
        terminal (a progress bar), False under cron (plain log lines)."""
        interactive = sys.stderr.isatty() if self.progress is None else self.progress
        configure_logging(interactive, self.log_file)
        return interactive


def configure_logging(interactive: bool, log_file: Path | None = None) -> None:
    """Log lines on stderr (bare at a terminal, timestamped otherwise), and to ``log_file``."""
    plain = logging.Formatter("%(asctime)s batchgen: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    # at a terminal, lines go above the progress bars (tqdm.write), not into them
    console = BarSafeHandler(sys.stderr) if interactive else logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s") if interactive else plain)
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{log_file}: cannot write the log file: {exc.strerror}") from None
        handlers[-1].setFormatter(plain)
    root = logging.getLogger("batchgen")
    root.handlers[:] = handlers
    root.setLevel(logging.INFO)
    root.propagate = False


@dataclass(frozen=True)
class Following:
    """How jobs are followed once sent: polling pace, previews and file names."""

    timeout: float | None
    poll_rpm: float
    poll_interval: float
    variants: tuple[str, ...] = ()  # run and download only: poll downloads nothing
    name_template: str | None = None
    thumbnails: bool = False  # run and download: the thumbnail too, where the profile has it

    def settings(
        self, workers: Workers, *, wait: bool, download_dir: Path | None
    ) -> FollowSettings:
        """The follower's settings, with ``wait`` and where to download (None: nowhere)."""
        return FollowSettings(
            wait=wait,
            timeout=self.timeout,
            poll_rpm=self.poll_rpm,
            concurrency=workers.concurrency,
            retry=workers.retry,
            download_dir=download_dir,
            variants=("video", *self.variants),
            thumbnails=self.thumbnails,
            name_template=self.name_template,
            poll_interval=self.poll_interval,
            grace_seconds=workers.grace,
        )


@dataclass(frozen=True)
class RunOptions:
    """The options only ``batchgen run`` takes."""

    manifest: Path
    sheet: str | None
    image_root: Path | None
    out: Path | None
    rpm: float
    limit: int | None
    max_cost: float | None
    max_jobs: int | None
    max_running: int | None  # None: the profile's cap; 0: none
    dry_run: bool
    list_rows: bool  # with --dry-run: one line per row
    skip_invalid: bool
    retry_rejected: bool
    resend_unresolved: bool
    wait: bool
    download_dir: Path | None
    mock: bool
    summary_json: Path | None
    notify: str | None

    def request(
        self, provider: ProviderOptions, workers: Workers, following: Following, output: Output
    ) -> RunRequest:
        """The run these options ask for (setting up its output)."""
        # downloading means following every job to its end: a single pass would find few done
        follows = self.wait or self.download_dir is not None
        configured_out = config_of_invocation().text("output")
        return RunRequest(
            manifest=self.manifest,
            provider=provider,
            out=self.out,
            configured_out=None if configured_out is None else Path(configured_out),
            sheet=self.sheet,
            image_root=self.image_root,
            skip_invalid=self.skip_invalid,
            retry_rejected=self.retry_rejected,
            dry_run=self.dry_run,
            limit=self.limit,
            max_cost=self.max_cost,
            max_jobs=self.max_jobs,
            max_running=self.max_running,
            mock=self.mock,
            interactive=output.configure(),
            submit=SubmitSettings(
                concurrency=workers.concurrency,
                rpm=self.rpm,
                retry=workers.retry,
                resend_unresolved=self.resend_unresolved,
                grace_seconds=workers.grace,
            ),
            follow=following.settings(workers, wait=True, download_dir=self.download_dir)
            if follows
            else None,
        )


@dataclass(frozen=True)
class FollowCommand:
    """``batchgen poll`` and ``batchgen download``: a results file and how to follow it."""

    results: Path
    wait: bool
    provider: ProviderOptions
    workers: Workers
    output: Output
    following: Following
    download_dir: Path | None = None  # download: --to

    def request(self) -> FollowRequest:
        """The following these options ask for (setting up its output)."""
        interactive = self.output.configure()
        settings = self.following.settings(
            self.workers, wait=self.wait, download_dir=self.download_dir
        )
        return FollowRequest(self.results, settings, self.provider, interactive)


manifest_options = options(
    click.argument("manifest", type=EXISTING_FILE),
    click.option("--profile", help="Provider profile: openai, relay, or a YAML file."),
    click.option("--sheet", help="Worksheet of an .xlsx or .ods manifest (default: the first)."),
    click.option(
        "--image-root",
        type=FOLDER,
        help="Folder images must be inside (default: the manifest's folder).",
    ),
)

#: The provider, request and output options of run, poll and download, arriving as
#: ``provider``, ``workers`` and ``output`` (``--profile`` each command declares itself).
provider_options = options(
    collect("provider", _provider),
    collect("workers", _workers),
    collect("output", Output),
    click.option(
        "--api-key-env",
        default="OPENAI_API_KEY",
        show_default=True,
        help="Environment variable holding the API key.",
    ),
    click.option("--allow-insecure", is_flag=True, help="Allow a plain http:// base URL."),
    click.option(
        "--allow-base-url",
        "allowed_base_urls",
        multiple=True,
        metavar="URL",
        help="Trust this origin when a manifest or results record names it (repeatable; "
        "also $BATCHGEN_ALLOWED_BASE_URLS).",
    ),
    click.option(
        "--request-timeout",
        type=SECONDS,
        default=120.0,
        show_default=True,
        help="Seconds to wait for one answer.",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 512),
        default=4,
        show_default=True,
        help="Requests in flight at once.",
    ),
    click.option(
        "--max-attempts",
        type=click.IntRange(1, 100),
        default=6,
        show_default=True,
        help="Tries per request before giving up on it (429s do not count: see --give-up-after).",
    ),
    click.option(
        "--give-up-after",
        type=SECONDS,
        default=DEFAULT_GIVE_UP_AFTER,
        show_default=True,
        help="Seconds a request waits through 429s (they cost nothing) before giving up.",
    ),
    click.option(
        "--backoff",
        type=click.FloatRange(0),
        default=1.0,
        show_default=True,
        help="Seconds before the first retry; doubles each try, with jitter.",
    ),
    click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar (default: when stderr is a terminal).",
    ),
    click.option("--log-file", type=NEW_FILE, help="Also write the plain log lines to this file."),
    click.option(
        "--grace",
        type=click.FloatRange(0),
        default=30.0,
        show_default=True,
        help="After SIGINT/SIGTERM, seconds requests in flight may take to finish.",
    ),
)


class WebhookUrl(click.ParamType[str]):
    """An http(s) webhook address; a wrong one is refused naming only its host (a secret)."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """``value`` checked by :func:`batchgen.notify.url_problem`."""
        from batchgen.notify import url_problem  # only when given: run starts as fast

        problem = url_problem(str(value).strip())
        if problem:
            self.fail(problem, param, ctx)
        return str(value).strip()


def notify_option(command: str) -> Callable[[F], F]:
    """``--notify URL``: POST a JSON summary there when ``command`` ends."""
    return click.option(
        "--notify",
        type=WebhookUrl(),
        help=f"When the {command} ends, POST a JSON summary to this webhook (Slack, "
        "Mattermost, Teams); a failure never changes the exit code.",
    )


def base_url_option(default_help: str) -> Callable[[F], F]:
    """``--base-url``, whose default each command describes as it works it out."""
    return click.option("--base-url", help=f"Provider address (default: {default_help}).")


#: How run, poll and download follow jobs, arriving as ``following``.
follow_options = options(
    collect("following", Following),
    click.option("--timeout", type=SECONDS, help="With --wait: give up waiting after SECONDS."),
    click.option(
        "--poll-rpm",
        type=SECONDS,
        default=DEFAULT_STATUS_RPM,
        show_default=True,
        help="Status checks (polls, list pages) per minute at most; fewer after a 429. "
        "Downloads are paced apart.",
    ),
    click.option(
        "--poll-interval",
        type=SECONDS,
        default=5.0,
        show_default=True,
        help="Seconds before a job's first check; adapts after.",
    ),
)

#: What run and download fetch once a job is done (poll downloads nothing).
download_options = options(
    click.option(
        "--variant",
        "variants",
        multiple=True,
        type=click.Choice(["thumbnail", "spritesheet"]),
        help="Also download these previews (repeatable).",
    ),
    click.option(
        "--thumbnails/--no-thumbnails",
        default=True,
        show_default=True,
        help="Download each video's thumbnail too, where the profile's provider makes one.",
    ),
    click.option(
        "--name",
        "name_template",
        help="File name template, e.g. '{id}' or '{campaign}-{row}' (default: the "
        "row's id, else its row number and a slug of the prompt).",
    ),
)

#: The options only run takes, arriving as ``options`` (with MANIFEST, --sheet and
#: --image-root of :data:`manifest_options`).
run_options = options(
    collect("options", RunOptions),
    click.option(
        "--out", type=NEW_FILE, help="Results CSV (default: the manifest's output:, or beside it)."
    ),
    click.option(
        "--rpm",
        type=SECONDS,
        default=60.0,
        show_default=True,
        help="Creates per minute, evenly paced.",
    ),
    click.option("--limit", type=click.IntRange(0), help="Send at most N rows this run."),
    click.option(
        "--max-cost",
        type=click.FloatRange(0),
        help="Budget in USD over every run of this results file; rows beyond it are not sent.",
    ),
    click.option("--max-jobs", type=click.IntRange(0), help="Cap on creates over every run."),
    click.option(
        "--max-running",
        type=click.IntRange(0),
        help="Jobs running at the provider at once (default: the profile's max_running; 0: "
        "no cap); without --wait, rows beyond it wait for the next run.",
    ),
    click.option("--dry-run", is_flag=True, help="Show what would be sent, and send nothing."),
    click.option(
        "--list",
        "list_rows",
        is_flag=True,
        help="With --dry-run: one line per row (what is sent, its cost, why skipped).",
    ),
    click.option("--skip-invalid", is_flag=True, help="Record invalid rows and send the rest."),
    click.option("--retry-rejected", is_flag=True, help="Send rejected and invalid rows again."),
    click.option(
        "--resend-unresolved",
        is_flag=True,
        help="Resend creates whose outcome cannot be looked up (may pay twice).",
    ),
    click.option("--wait", is_flag=True, help="Then poll every job until it is final."),
    click.option(
        "--download",
        "download_dir",
        type=FOLDER,
        help="Download finished videos into this folder as they complete.",
    ),
    click.option(
        "--mock", is_flag=True, help="Use the built-in simulated API: no key, no network."
    ),
    click.option(
        "--summary-json",
        type=NEW_FILE,
        help="Write the run's counts, costs, durations and exit code as JSON.",
    ),
    notify_option("run"),
)


def follow_command(wait_help: str, *, downloads: bool) -> Callable[[F], F]:
    """The options of poll and download after RESULTS (and --to), arriving as ``command``;
    the file options only where the command ``downloads``."""
    return options(
        click.option(
            "--profile",
            help="Provider profile (default: the one run used, recorded beside RESULTS).",
        ),
        base_url_option("where run sent the jobs, recorded beside RESULTS"),
        provider_options,
        follow_options,
        *((download_options,) if downloads else ()),
        click.option("--wait", is_flag=True, help=wait_help),
        collect("command", FollowCommand),
    )
