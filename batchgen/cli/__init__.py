"""The ``batchgen`` command line: parses arguments, calls the library, prints the outcome.

No logic lives here. Every :class:`BatchgenError` becomes its message on stderr and its
exit code; nothing the user can cause ends in a traceback. The option groups shared by
several commands are in :mod:`batchgen.cli.options`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from batchgen import __version__, render
from batchgen import notify as notifier
from batchgen.cli.configured import config_of_invocation, configured
from batchgen.cli.help import COMPLETION, WorkflowGroup
from batchgen.cli.options import (
    EXISTING_FILE,
    FOLDER,
    NEW_FILE,
    FollowCommand,
    Following,
    Output,
    RunOptions,
    Workers,
    base_url_option,
    configure_logging,
    download_options,
    follow_command,
    follow_options,
    manifest_options,
    notify_option,
    provider_options,
    run_options,
)
from batchgen.errors import BatchgenError, ManifestError, UsageError
from batchgen.output_paths import check_writable_file
from batchgen.provider.resolve import ProviderOptions
from batchgen.runner import follow_results, prepare, run


class BatchgenGroup(WorkflowGroup):
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


@click.group(
    cls=BatchgenGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=COMPLETION,
)
@click.version_option(__version__, prog_name="batchgen")
def cli() -> None:
    """Turn a spreadsheet of prompts into generated videos, resumably, never paying twice.

    Settings not given as flags come from the manifest, the environment, a batchgen.toml
    beside the manifest, then ~/.config/batchgen/config.toml (`batchgen config` shows them).
    """


@cli.command("init")
@click.argument("folder", type=FOLDER)
@click.option("--profile", help="Provider profile the dropdowns come from (default: openai).")
def init_command(folder: Path, profile: str | None) -> None:
    """Start a batch in FOLDER: manifest.xlsx with dropdowns from the profile and example
    rows, an images/ folder and a commented batchgen.toml. Never overwrites a manifest."""
    from batchgen.profile_files import is_builtin, load_profile
    from batchgen.provider.resolve import profile_name
    from batchgen.starter import write_starter

    name = profile_name(profile, None)
    # the config lives in FOLDER: a user's profile file is named so that it still resolves
    ref = name if is_builtin(name) else str(Path(name).resolve())
    starter = write_starter(folder, load_profile(name), ref)
    click.echo(f"wrote {starter.manifest} (profile {name})")
    click.echo(f"images go in {starter.images}")
    click.echo(f"wrote {starter.config}" if starter.config else "kept the existing batchgen.toml")
    chosen = f" --profile {ref}" if profile else ""
    click.echo(f"next: batchgen validate {starter.manifest}{chosen}")


@cli.command("validate")
@configured("manifest")
@manifest_options
def validate_command(
    manifest: Path, profile: str | None, sheet: str | None, image_root: Path | None
) -> None:
    """Check every row of MANIFEST against the provider profile; send nothing."""
    configured_profile = config_of_invocation().text("profile")
    prepared = prepare(
        manifest,
        profile=profile,
        sheet=sheet,
        image_root=image_root,
        configured=configured_profile,
    )
    if prepared.validation.problems:
        raise ManifestError(prepared.validation.problems)
    click.echo(render.validation(prepared))


@cli.command("run")
@configured("manifest")
@manifest_options
@base_url_option("the manifest's, $OPENAI_BASE_URL, the config files', the profile's")
@provider_options
@follow_options
@download_options
@run_options
def run_command(
    options: RunOptions,
    provider: ProviderOptions,
    workers: Workers,
    output: Output,
    following: Following,
) -> None:
    """Validate MANIFEST, then submit every row not yet submitted, resuming where the last
    run stopped; with --wait/--download, follow the jobs to the end."""
    if options.list_rows and not options.dry_run:  # a listing must never turn into purchases
        raise UsageError("--list shows a dry run's rows: add --dry-run")
    summary_path = options.summary_json
    if summary_path is not None:  # before the night's creates, not after them
        check_writable_file(summary_path, "the summary")
    try:
        result = run(options.request(provider, workers, following, output))
    except BatchgenError as exc:
        if summary_path is not None:
            render.write_failure_json(exc, summary_path)
        if options.notify:
            notifier.notify(options.notify, notifier.failure_payload("run", exc))
        raise
    if result.dry_run and options.list_rows:
        click.echo(render.plan_listing(result))
    click.echo(render.plan(result) if result.dry_run else render.summary(result))
    if summary_path is not None:
        render.write_summary_json(result, summary_path)
    if options.notify and not result.dry_run:  # a dry run did nothing to tell anyone about
        notifier.notify(options.notify, notifier.run_payload(result))
    sys.exit(result.exit_code)


@cli.command("poll")
@configured("results")
@click.argument("results", type=EXISTING_FILE)
@follow_command("Keep polling until every job is final.", downloads=False)
def poll_command(command: FollowCommand) -> None:
    """Check every unfinished job of RESULTS and record what changed."""
    _follow(command)


@cli.command("download")
@configured("results")
@click.argument("results", type=EXISTING_FILE)
@click.option("--to", "download_dir", type=FOLDER, required=True, help="Folder for the videos.")
@follow_command("Keep going until every job is final.", downloads=True)
def download_command(command: FollowCommand) -> None:
    """Download every finished video of RESULTS (checking unfinished jobs on the way)."""
    _follow(command)


def _follow(command: FollowCommand) -> None:
    result = follow_results(command.request())
    click.echo(render.follow_summary(result.results_path, result.tally, result.stopped_by))
    sys.exit(result.exit_code)


@cli.command("config")
@click.argument("manifest", type=EXISTING_FILE, required=False)
@click.option("--sheet", help="Worksheet of a workbook manifest (default: the first).")
def config_command(manifest: Path | None, sheet: str | None) -> None:
    """Show the settings a run of MANIFEST without flags would use, and where each came
    from (the manifest, the environment, batchgen.toml, your config.toml, the defaults)."""
    from batchgen.cli.configured import OPTION_KEYS
    from batchgen.config_files import KEY_TYPES, load_config_files
    from batchgen.config_show import effective_settings, render_settings
    from batchgen.manifest import load_manifest

    files = load_config_files(manifest.parent if manifest else Path.cwd(), os.environ)
    loaded = load_manifest(manifest, sheet=sheet) if manifest else None
    ctx = click.get_current_context()
    run_params = {p.name: p for p in run_command.get_params(ctx)}
    defaults = {
        key: run_params[OPTION_KEYS[key]].default if key in OPTION_KEYS else None
        for key in KEY_TYPES
    }
    settings = effective_settings(files, loaded, os.environ, defaults)
    click.echo(render_settings(settings, files, os.environ))


@cli.command("report")
@configured("results")
@click.argument("results", type=EXISTING_FILE)
@notify_option("report")
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
@click.option(
    "--json",
    "json_path",
    type=NEW_FILE,
    help="Write counts, seconds, cost, rows needing attention and the summaries as JSON.",
)
@click.option(
    "--by",
    "group_by",
    multiple=True,
    metavar="COL",
    help="Summarise by COL: rows per status, seconds, cost (repeatable; "
    "default: campaign and owner, when the results have them).",
)
def report_command(
    results: Path,
    profile: str | None,
    csv_path: Path | None,
    xlsx_path: Path | None,
    html_path: Path | None,
    json_path: Path | None,
    group_by: tuple[str, ...],
    notify: str | None,
) -> None:
    """Summarise RESULTS: counts per status, seconds of video, rows needing attention."""
    from batchgen.provider.resolve import profile_for_results
    from batchgen.report import html as report_html
    from batchgen.report import json_export
    from batchgen.report import summary as report
    from batchgen.report.groups import summaries_for

    for path in (csv_path, xlsx_path, html_path, json_path):
        if path is not None:
            check_writable_file(path, "the report")
    loaded = report.load_report(results, profile_for_results(results, profile))
    summaries = summaries_for(loaded, group_by)  # an unknown --by: exit 2, nothing written
    click.echo(report.render_summary(loaded, summaries))
    writers: tuple[tuple[Path | None, Callable[[report.Report, Path], Path]], ...] = (
        (csv_path, report.write_csv),
        (xlsx_path, lambda r, p: report.write_xlsx(r, p, summaries)),
        (html_path, report_html.write_html),
        (json_path, lambda r, p: json_export.write_json(r, p, summaries)),
    )
    for path, write in writers:
        if path is not None:
            click.echo(f"wrote {write(loaded, path)}")
    if notify:
        configure_logging(sys.stderr.isatty())  # report has no --log-file: stderr only
        written = [path for path, _ in writers if path is not None]
        notifier.notify(notify, notifier.report_payload(loaded, written))


@cli.command("resolve")
@click.argument("results", type=EXISTING_FILE)
@click.argument("key")
@click.option("--job-id", help="The job the provider's dashboard shows for KEY: adopt it.")
@click.option(
    "--not-made", is_flag=True, help="The provider made no job for KEY: send it next run."
)
def resolve_command(results: Path, key: str, job_id: str | None, not_made: bool) -> None:
    """Settle the unresolved row KEY of RESULTS by hand, once the provider's dashboard
    showed whether its create made a job. Sends nothing."""
    from batchgen.settle import settle

    click.echo(settle(results, key, job_id=job_id, not_made=not_made).summary(results))


@cli.command("repair")
@click.argument("results", type=EXISTING_FILE)
def repair_command(results: Path) -> None:
    """Rebuild RESULTS after another program rewrote it (columns, sorting, encoding), keeping
    every row that ever had a job as paid; the old file is kept as a .bak. Sends nothing."""
    from batchgen.repair import repair_results

    click.echo(repair_results(results).summary())


@cli.command("doctor")
@click.option("--profile", help="Profile to check: openai, new-api, relay, litellm, FILE.")
@click.option("--base-url", help="Provider address (default: $OPENAI_BASE_URL, the profile's).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Key variable.")
@click.option("--allow-insecure", is_flag=True, help="Allow a plain http:// base URL.")
@click.option("--allow-base-url", "allowed", multiple=True, metavar="URL", help="Trust origin.")
@click.option("--job-id", help="A finished job of yours: also check its status and content.")
def doctor_command(
    profile: str | None,
    base_url: str | None,
    api_key_env: str,
    allow_insecure: bool,
    allowed: tuple[str, ...],
    job_id: str | None,
) -> None:
    """Check a provider against a profile with GET requests only (never a create): exit 0
    when every setting fits, 1 when one does not, 2 when it cannot be reached or refuses
    the key."""
    import os

    from batchgen.doctor import check_provider, doctor_provider

    options = ProviderOptions(
        env=dict(os.environ),
        profile=profile,
        base_url=base_url,
        api_key_env=api_key_env,
        allow_insecure=allow_insecure,
        allowed_base_urls=allowed,
        request_timeout=30.0,
    )
    report = check_provider(doctor_provider(options), job_id)
    click.echo(report.render())
    sys.exit(report.exit_code)


@cli.command("profiles")
@click.argument("profile", required=False)
def profiles_command(profile: str | None) -> None:
    """List the built-in provider profiles, or show PROFILE (a name or a YAML file) in full:
    models, sizes, seconds, prices, fields and capabilities. Sends nothing."""
    from batchgen.profile_show import profile_details, profile_list

    click.echo(profile_list() if profile is None else profile_details(profile))


@cli.command("serve-mock")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--flavor",
    "--flavour",
    "--profile",
    "flavor",
    default="openai",
    show_default=True,
    help="Profile (name or YAML file) whose provider to behave as: ids, words, errors, links.",
)
@click.option(
    "--refresh-seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="How often a job's status changes there (default: the profile's).",
)
@click.option(
    "--job-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="How long a simulated job takes to complete.",
)
@click.option(
    "--job-seconds-min",
    type=click.FloatRange(min=0),
    default=None,
    help="Spread job durations: each drawn (seeded) between this and --job-seconds.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of creates answered 429, 500, 503 or HTML 502.",
)
@click.option(
    "--status-rate-limit-rpm",
    type=click.IntRange(min=1),
    default=None,
    help="Answer status checks (GET /videos/{id}, GET /videos) beyond N a minute with 429, "
    "as relays limit GETs; creates are not counted.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for injected faults.")
def serve_mock_command(
    port: int,
    flavor: str,
    refresh_seconds: float | None,
    job_seconds: float,
    job_seconds_min: float | None,
    fault_rate: float,
    status_rate_limit_rpm: int | None,
    seed: int,
) -> None:
    """Run the simulated video API on 127.0.0.1 as PROFILE's provider serves it (Ctrl-C stops)."""
    from batchgen.mock import MockConfig, common_faults, serve_forever
    from batchgen.profile_files import load_profile

    profile = load_profile(flavor)
    timing = {} if refresh_seconds is None else {"refresh_seconds": refresh_seconds}
    faults = replace(common_faults(fault_rate, seed), status_rate_limit_rpm=status_rate_limit_rpm)
    config = MockConfig.for_profile(
        profile,
        faults=faults,
        job_duration=job_seconds,
        job_duration_min=job_seconds_min,
        **timing,
    )
    serve_forever(config, port=port)


def main() -> None:
    """Entry point of the ``batchgen`` console script."""
    cli(prog_name="batchgen")
