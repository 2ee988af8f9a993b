"""The ``batchgen`` command line: parses arguments, calls the library, prints the outcome.

No logic lives here. Every :class:`BatchgenError` becomes its message on stderr and its
exit code; nothing the user can cause ends in a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from batchgen import __version__, render
from batchgen.errors import BatchgenError, ManifestError, UsageError
from batchgen.follow.follower import FollowSettings
from batchgen.output_paths import check_writable_file
from batchgen.provider.retry import RetrySettings
from batchgen.runner import FollowRequest, RunRequest, follow_results, prepare, run
from batchgen.submit import SubmitSettings

F = TypeVar("F", bound=Callable[..., Any])
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
NEW_FILE = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(file_okay=False, path_type=Path)
SECONDS = click.FloatRange(0, min_open=True)


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, applied in the order written."""

    def apply(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


manifest_options = _options(
    click.argument("manifest", type=EXISTING_FILE),
    click.option("--profile", help="Provider profile: openai, relay, or a YAML file."),
    click.option("--sheet", help="Worksheet of an .xlsx manifest (default: the first)."),
    click.option(
        "--image-root",
        type=FOLDER,
        help="Folder images must be inside (default: the manifest's folder).",
    ),
)

provider_options = _options(
    click.option(
        "--base-url", help="Provider address (default: manifest, $OPENAI_BASE_URL, profile)."
    ),
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
        help="Tries per request before giving up on it.",
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

follow_options = _options(
    click.option("--timeout", type=SECONDS, help="With --wait: give up waiting after SECONDS."),
    click.option(
        "--poll-rpm",
        type=SECONDS,
        default=120.0,
        show_default=True,
        help="Status checks and downloads per minute, evenly paced.",
    ),
    click.option(
        "--poll-interval",
        type=SECONDS,
        default=5.0,
        show_default=True,
        help="Seconds before a job's first check; adapts after.",
    ),
    click.option(
        "--variant",
        "variants",
        multiple=True,
        type=click.Choice(["thumbnail", "spritesheet"]),
        help="Also download these previews (repeatable).",
    ),
    click.option(
        "--name",
        "name_template",
        help="File name template, e.g. '{id}' or '{campaign}-{row}' (default: the "
        "row's id, else its row number and a slug of the prompt).",
    ),
)


class BatchgenGroup(click.Group):
    """Turns batchgen's own errors into their message on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ManifestError as exc:
            click.echo(str(exc), err=True)
            click.echo(f"batchgen: {len(exc.problems)} problem(s); nothing was sent", err=True)
            ctx.exit(exc.exit_code)
        except BatchgenError as exc:
            click.echo(f"batchgen: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # before the run's own signal handling was in place
            click.echo("batchgen: interrupted before anything was sent", err=True)
            ctx.exit(130)


@click.group(cls=BatchgenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
def cli() -> None:
    """Turn a spreadsheet of prompts into generated videos, resumably, never paying twice."""


@cli.command("validate")
@manifest_options
def validate_command(
    manifest: Path, profile: str | None, sheet: str | None, image_root: Path | None
) -> None:
    """Check every row of MANIFEST against the provider profile; send nothing."""
    prepared = prepare(manifest, profile=profile, sheet=sheet, image_root=image_root)
    if prepared.report.problems:
        raise ManifestError(prepared.report.problems)
    click.echo(render.validation(prepared))


@cli.command("run")
@manifest_options
@provider_options
@follow_options
@click.option(
    "--out", type=NEW_FILE, help="Results CSV (default: the manifest's output:, or beside it)."
)
@click.option(
    "--rpm", type=SECONDS, default=60.0, show_default=True, help="Creates per minute, evenly paced."
)
@click.option("--limit", type=click.IntRange(0), help="Send at most N rows this run.")
@click.option(
    "--max-cost",
    type=click.FloatRange(0),
    help="Budget in USD over every run of this results file; rows beyond it are not sent.",
)
@click.option("--max-jobs", type=click.IntRange(0), help="Cap on creates over every run.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent, and send nothing.")
@click.option("--skip-invalid", is_flag=True, help="Record invalid rows and send the rest.")
@click.option("--retry-rejected", is_flag=True, help="Send rejected and invalid rows again.")
@click.option(
    "--resend-unresolved",
    is_flag=True,
    help="Resend creates whose outcome cannot be looked up (may pay twice).",
)
@click.option("--wait", is_flag=True, help="Then poll every job until it is final.")
@click.option(
    "--download",
    "download_dir",
    type=FOLDER,
    help="Download finished videos into this folder as they complete.",
)
@click.option("--mock", is_flag=True, help="Use the built-in simulated API: no key, no network.")
@click.option(
    "--summary-json",
    type=NEW_FILE,
    help="Write the run's counts, costs, durations and exit code as JSON.",
)
def run_command(**options: Any) -> None:
    """Validate MANIFEST, then submit every row not yet submitted, resuming where the last
    run stopped; with --wait/--download, follow the jobs to the end."""
    summary_path = options["summary_json"]
    if summary_path is not None:  # before the night's creates, not after them
        check_writable_file(summary_path, "the summary")
    try:
        result = run(_run_request(options))
    except BatchgenError as exc:
        if summary_path is not None:
            render.write_failure_json(exc, summary_path)
        raise
    click.echo(render.plan(result) if result.dry_run else render.summary(result))
    if summary_path is not None:
        render.write_summary_json(result, summary_path)
    sys.exit(result.exit_code)


@cli.command("poll")
@click.argument("results", type=EXISTING_FILE)
@click.option("--profile", help="Provider profile the jobs were sent with (default: openai).")
@provider_options
@follow_options
@click.option("--wait", is_flag=True, help="Keep polling until every job is final.")
def poll_command(**options: Any) -> None:
    """Check every unfinished job of RESULTS and record what changed."""
    _follow(options, download_dir=None)


@cli.command("download")
@click.argument("results", type=EXISTING_FILE)
@click.option("--to", "download_dir", type=FOLDER, required=True, help="Folder for the videos.")
@click.option("--profile", help="Provider profile the jobs were sent with (default: openai).")
@provider_options
@follow_options
@click.option("--wait", is_flag=True, help="Keep going until every job is final.")
def download_command(download_dir: Path, **options: Any) -> None:
    """Download every finished video of RESULTS (checking unfinished jobs on the way)."""
    _follow(options, download_dir=download_dir)


def _follow(options: dict[str, Any], download_dir: Path | None) -> None:
    interactive = _configure_output(options)
    result = follow_results(
        FollowRequest(
            results=options["results"],
            settings=_follow_settings(options, download_dir),
            env=dict(os.environ),
            profile=options["profile"],
            base_url=options["base_url"],
            api_key_env=options["api_key_env"],
            allow_insecure=options["allow_insecure"],
            allowed_base_urls=options["allowed_base_urls"],
            request_timeout=options["request_timeout"],
            interactive=interactive,
        )
    )
    click.echo(render.follow_summary(result.results_path, result.tally, result.stopped_by))
    sys.exit(result.exit_code)


@cli.command("report")
@click.argument("results", type=EXISTING_FILE)
@click.option("--profile", help="Profile for cost estimates (default: the one the run used).")
@click.option("--csv", "csv_path", type=NEW_FILE, help="Write one row per job, for a spreadsheet.")
@click.option(
    "--xlsx",
    "xlsx_path",
    type=NEW_FILE,
    help="The same as an Excel workbook, with links to the videos.",
)
@click.option(
    "--html",
    "html_path",
    type=NEW_FILE,
    help="A self-contained contact sheet: a card per row with its thumbnail.",
)
def report_command(
    results: Path,
    profile: str | None,
    csv_path: Path | None,
    xlsx_path: Path | None,
    html_path: Path | None,
) -> None:
    """Summarise RESULTS: counts per status, seconds of video, rows needing attention."""
    from batchgen.report import html as report_html
    from batchgen.report import summary as report
    from batchgen.runner import profile_for_results

    writers = (
        (csv_path, report.write_csv),
        (xlsx_path, report.write_xlsx),
        (html_path, report_html.write_html),
    )
    for path, _ in writers:
        if path is not None:
            check_writable_file(path, "the report")
    loaded = report.load_report(results, profile_for_results(results, profile))
    click.echo(report.render_summary(loaded))
    for path, write in writers:
        if path is not None:
            click.echo(f"wrote {write(loaded, path)}")


@cli.command("repair")
@click.argument("results", type=EXISTING_FILE)
def repair_command(results: Path) -> None:
    """Rebuild RESULTS after another program rewrote it (columns, sorting, encoding), keeping
    every row that ever had a job as paid; the old file is kept as a .bak. Sends nothing."""
    from batchgen.repair import repair_results

    click.echo(repair_results(results).summary())


@cli.command("serve-mock")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--profile", default="openai", show_default=True, help="Profile to validate against.")
@click.option(
    "--job-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="How long a simulated job takes to complete.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of creates answered 429, 500, 503 or HTML 502.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for injected faults.")
def serve_mock_command(
    port: int, profile: str, job_seconds: float, fault_rate: float, seed: int
) -> None:
    """Run the simulated video API on 127.0.0.1 (stop with Ctrl-C)."""
    from batchgen.mock.server import MockConfig, common_faults, serve_forever
    from batchgen.profile import load_profile

    faults = common_faults(fault_rate, seed)
    config = MockConfig(profile=load_profile(profile), faults=faults, job_duration=job_seconds)
    serve_forever(config, port=port)


def _run_request(options: dict[str, Any]) -> RunRequest:
    # downloading means following every job to its end: a single pass would find few done
    follows = options["wait"] or options["download_dir"] is not None
    return RunRequest(
        manifest=options["manifest"],
        env=dict(os.environ),
        profile=options["profile"],
        base_url=options["base_url"],
        api_key_env=options["api_key_env"],
        out=options["out"],
        sheet=options["sheet"],
        image_root=options["image_root"],
        skip_invalid=options["skip_invalid"],
        retry_rejected=options["retry_rejected"],
        dry_run=options["dry_run"],
        limit=options["limit"],
        max_cost=options["max_cost"],
        max_jobs=options["max_jobs"],
        mock=options["mock"],
        allow_insecure=options["allow_insecure"],
        allowed_base_urls=options["allowed_base_urls"],
        request_timeout=options["request_timeout"],
        interactive=_configure_output(options),
        submit=SubmitSettings(
            concurrency=options["concurrency"],
            rpm=options["rpm"],
            retry=_retry(options),
            resend_unresolved=options["resend_unresolved"],
            grace_seconds=options["grace"],
        ),
        follow=_follow_settings({**options, "wait": True}, options["download_dir"])
        if follows
        else None,
    )


def _follow_settings(options: dict[str, Any], download_dir: Path | None) -> FollowSettings:
    variants: Sequence[str] = options["variants"]
    return FollowSettings(
        wait=options["wait"],
        timeout=options["timeout"],
        poll_rpm=options["poll_rpm"],
        concurrency=options["concurrency"],
        retry=_retry(options),
        download_dir=download_dir,
        variants=("video", *variants),
        name_template=options["name_template"],
        poll_interval=options["poll_interval"],
        grace_seconds=options["grace"],
    )


def _retry(options: dict[str, Any]) -> RetrySettings:
    return RetrySettings(max_attempts=options["max_attempts"], backoff_base=options["backoff"])


def _configure_output(options: dict[str, Any]) -> bool:
    """Set up logging (stderr, and --log-file); True when a person is watching a terminal
    (a progress bar), False under cron (plain log lines)."""
    interactive: bool | None = options["progress"]
    if interactive is None:
        interactive = sys.stderr.isatty()
    _configure_logging(interactive, options["log_file"])
    return interactive


def _configure_logging(interactive: bool, log_file: Path | None = None) -> None:
    plain = logging.Formatter("%(asctime)s batchgen: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
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


def main() -> None:
    """Entry point of the ``batchgen`` console script."""
    cli(prog_name="batchgen")
