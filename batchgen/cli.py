"""The ``batchgen`` command line: parses arguments, calls the library, prints the outcome.

No logic lives here. Every :class:`BatchgenError` becomes its message on stderr and its
exit code; nothing the user can cause ends in a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchgen import __version__, render
from batchgen.errors import BatchgenError, ManifestError, UsageError
from batchgen.retry import RetrySettings
from batchgen.runner import RunRequest, prepare, run
from batchgen.submit import SubmitSettings

F = TypeVar("F", bound=Callable[..., Any])
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def manifest_options(command: F) -> F:
    """Options shared by every command that reads a manifest."""
    for option in reversed(
        [
            click.argument("manifest", type=EXISTING_FILE),
            click.option("--profile", help="Provider profile: openai, relay, or a YAML file."),
            click.option("--sheet", help="Worksheet of an .xlsx manifest (default: the first)."),
            click.option(
                "--image-root",
                type=click.Path(file_okay=False, path_type=Path),
                help="Folder images must be inside (default: the manifest's folder).",
            ),
        ]
    ):
        command = option(command)
    return command


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
@click.option("--base-url", help="Provider address (default: manifest, $OPENAI_BASE_URL, profile).")
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable holding the API key.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results CSV (default: the manifest's output:, or beside it).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=4,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--rpm",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Requests per minute, evenly paced.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Tries per request before a row is recorded as error.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds to wait for one answer.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds before the first retry; doubles each try, with jitter.",
)
@click.option("--limit", type=click.IntRange(0), help="Send at most N rows this run.")
@click.option(
    "--max-cost",
    type=click.FloatRange(0),
    help="Budget in USD over every run of this results file; rows beyond it are not sent.",
)
@click.option("--max-jobs", type=click.IntRange(0), help="Cap on creates over every run.")
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the run's counts, costs, durations and exit code as JSON.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plain log lines to this file.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be sent, and send nothing.")
@click.option("--skip-invalid", is_flag=True, help="Record invalid rows and send the rest.")
@click.option("--retry-rejected", is_flag=True, help="Send rejected and invalid rows again.")
@click.option(
    "--resend-unresolved",
    is_flag=True,
    help="Resend creates whose outcome cannot be looked up (may pay twice).",
)
@click.option("--mock", is_flag=True, help="Use the built-in simulated API: no key, no network.")
@click.option("--allow-insecure", is_flag=True, help="Allow a plain http:// base URL.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when stderr is a terminal).",
)
def run_command(**options: Any) -> None:
    """Validate MANIFEST, then submit every row not yet submitted, resuming where the last
    run stopped."""
    summary_path = options["summary_json"]
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


def _run_request(options: dict[str, Any]) -> RunRequest:
    interactive = options["progress"]
    if interactive is None:
        interactive = sys.stderr.isatty()
    _configure_logging(interactive, options["log_file"])
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
        request_timeout=options["timeout"],
        interactive=interactive,
        submit=SubmitSettings(
            concurrency=options["concurrency"],
            rpm=options["rpm"],
            retry=RetrySettings(
                max_attempts=options["max_attempts"], backoff_base=options["backoff"]
            ),
            resend_unresolved=options["resend_unresolved"],
        ),
    )


@cli.command("report")
@click.argument("results", type=EXISTING_FILE)
@click.option("--profile", default="openai", show_default=True, help="Profile for cost estimates.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one row per job, for a spreadsheet.",
)
@click.option(
    "--xlsx",
    "xlsx_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The same as an Excel workbook, with links to the videos.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A self-contained contact sheet: a card per row with its thumbnail.",
)
def report_command(
    results: Path,
    profile: str,
    csv_path: Path | None,
    xlsx_path: Path | None,
    html_path: Path | None,
) -> None:
    """Summarise RESULTS: counts per status, seconds of video, rows needing attention."""
    from batchgen import report, report_html
    from batchgen.profile import load_profile

    loaded = report.load_report(results, load_profile(profile))
    click.echo(report.render_summary(loaded))
    for path, write in (
        (csv_path, report.write_csv),
        (xlsx_path, report.write_xlsx),
        (html_path, report_html.write_html),
    ):
        if path is not None:
            click.echo(f"wrote {write(loaded, path)}")


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
    from batchgen.mock_server import Faults, MockConfig, serve_forever
    from batchgen.profile import load_profile

    share = fault_rate / 4
    faults = Faults(seed=seed, error_429=share, error_500=share, error_503=share, html_502=share)
    config = MockConfig(profile=load_profile(profile), faults=faults, job_duration=job_seconds)
    serve_forever(config, port=port)


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
