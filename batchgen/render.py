"""Text for people: validation outcomes, dry-run plans and closing summaries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from batchgen.attention import AttentionRow, attention_json, attention_lines, attention_rows
from batchgen.errors import BatchgenError, Problem, UsageError
from batchgen.follow.tally import FollowTally
from batchgen.jobs import CORE_FIELDS, InvalidRow, Job
from batchgen.plan import RECONCILE, SEND, SKIP, Step
from batchgen.profile import Profile
from batchgen.runner import Prepared, RunResult


def problems(items: Iterable[Problem]) -> str:
    """One ``file:row: column: message`` line per problem."""
    return "\n".join(str(p) for p in items)


def validation(prepared: Prepared) -> str:
    """The one-paragraph verdict of ``batchgen validate``."""
    outcome = prepared.validation
    jobs = outcome.jobs
    seconds = sum(job.seconds for job in jobs)
    expanded = len(jobs) + len(outcome.invalid)
    videos = f" expanded to {expanded} videos," if expanded != outcome.rows else ""
    lines = [
        *prepared.manifest.notes,
        *warnings(prepared),
        f"{prepared.manifest.path}: {outcome.rows} rows,{videos} {len(jobs)} valid, "
        f"{len(outcome.invalid)} invalid (profile {prepared.profile.name}); "
        f"{seconds} seconds of video",
    ]
    if outcome.fitted:
        lines.append(f"images to be fitted to the video size: {len(outcome.fitted)}")
        lines += [f"  {note}" for note in outcome.fitted]
    cost = prepared.profile.total_cost(job.fields for job in jobs)
    if cost is not None:
        lines.append(f"estimated cost if all are sent: ${cost:,.2f}")
    return "\n".join(lines)


def warnings(prepared: Prepared) -> list[str]:
    """``warning: …`` lines from validation (a model the profile does not list, …)."""
    return [f"warning: {line}" for line in prepared.validation.warnings]


def plan(result: RunResult) -> str:
    """What a run would do: rows to send, to look up, to skip and why."""
    steps = result.plan
    sends, lookups = steps.with_action(SEND), steps.with_action(RECONCILE)
    outcome = result.prepared.validation
    lines = [
        *warnings(result.prepared),
        f"dry run against {result.base_url} (profile {result.prepared.profile.name}); "
        f"results file {result.results_path}",
        f"  manifest: {outcome.rows} rows -> {len(outcome.jobs) + len(outcome.invalid)} videos",
        f"  to send: {len(sends)} rows, {sum(s.job.seconds for s in sends)} seconds of video",
    ]
    if lookups:
        lines.append(f"  to look up first (a create may have been sent): {len(lookups)} rows")
    for reason, count in sorted(steps.reasons().items()):
        lines.append(f"  to skip: {count} rows: {reason}")
    if outcome.invalid:
        lines.append(f"  invalid (recorded, not sent): {len(outcome.invalid)} rows")
    cost = result.prepared.profile.total_cost(step.job.fields for step in steps.to_submit)
    if cost is not None:
        lines.append(f"  estimated cost: ${cost:,.2f}")
    lines.append("nothing was sent")
    return "\n".join(lines)


LISTING_HEADER = ("row", "id", "action", "cost", "sends", "why")
ACTION_WORDS = {SEND: "send", RECONCILE: "look up", SKIP: "skip"}
PROMPT_EXCERPT = 40  # characters of the prompt a listing shows


def plan_listing(result: RunResult) -> str:
    """A dry run row by row: row, id, action, estimated cost, what is sent, why (``--list``).

    Invalid rows (``--skip-invalid``) are listed with their problems; the costs of the
    rows to send add up to the plan's estimated cost.
    """
    profile = result.prepared.profile
    lines = [(step.job.row, _step_cells(step, profile)) for step in result.plan.steps]
    lines += [(row.row, _invalid_cells(row)) for row in result.prepared.validation.invalid]
    lines.sort(key=lambda line: line[0])  # stable: a row's expanded videos keep their order
    return _aligned([LISTING_HEADER, *(cells for _, cells in lines)])


def _step_cells(step: Step, profile: Profile) -> tuple[str, ...]:
    job = step.job
    cost = "-" if step.action == SKIP else _cost_cell(profile.estimate_cost(job.fields))
    return (str(job.row), job.key, ACTION_WORDS[step.action], cost, _sends(job), step.reason)


def _invalid_cells(row: InvalidRow) -> tuple[str, ...]:
    return (str(row.row), row.key, "invalid", "-", "-", "; ".join(row.messages))


def _cost_cell(cost: float | None) -> str:
    return "no price" if cost is None else f"${cost:,.2f}"


def _sends(job: Job) -> str:
    """What a row's create carries, short: model, size, seconds, extras, image, prompt."""
    fields = job.fields
    parts = [fields["model"], fields["size"], f"{fields['seconds']}s"]
    parts += [f"{name}={value}" for name, value in fields.items() if name not in CORE_FIELDS]
    if job.image_text:
        parts.append(f"image={job.image_text}")
    if job.remix_of or job.remix_source:
        parts.append(f"remix of {job.remix_of or job.remix_source}")
    prompt = " ".join(fields["prompt"].split())  # one line, whatever the cell held
    if len(prompt) > PROMPT_EXCERPT:
        prompt = prompt[: PROMPT_EXCERPT - 1] + "…"
    return " ".join([*parts, f'"{prompt}"'])


def _aligned(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last one, free text, is not padded."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*map(str.ljust, row, widths), row[-1]]).rstrip() for row in rows)


def summary(result: RunResult) -> str:
    """The closing lines of ``batchgen run``: where the results are and how rows stand."""
    lines = [*warnings(result.prepared), f"results: {result.results_path}"]
    if result.this_run:
        lines.append(f"this run: {_counts(result.this_run)}")
    lines.append(f"all rows: {_counts(result.statuses)}")
    if result.prepared.profile.prices:
        this_run, total = result.cost_of(result.sent_keys), result.cost_of(result.states)
        lines.append(f"estimated cost: ${this_run:,.2f} this run, ${total:,.2f} for all rows")
    if result.tally.possible_duplicates:
        lines.append(
            f"possible duplicates: {result.tally.possible_duplicates} creates were resent "
            "without being able to check whether the first one reached the provider"
        )
    if result.follow is not None:
        lines.append(_follow_line(result.follow))
    held = held_back_seconds(result)
    if held > 0:
        lines.append(f"the provider held the run back {duration(held)} (429)")
    lines += attention_lines(run_attention(result))
    if result.stopped_by is not None:
        lines.append(RESUME_HINT)
    return "\n".join(lines)


def run_attention(result: RunResult) -> list[AttentionRow]:
    """The rows of the results file needing attention at the end of the run."""
    manifest = result.prepared.manifest.path
    return attention_rows(result.states.values(), result.results_path, manifest)


def held_back_seconds(result: RunResult) -> float:
    """How long the provider's 429s held the run's creates, polls and downloads back."""
    follow = result.follow.held_back_seconds if result.follow is not None else 0.0
    return result.tally.held_back_seconds + follow


def duration(seconds: float) -> str:
    """``3 min 20 s``, ``1 h 5 min``, ``12 s``, ``0.4 s``: a wait as people say it."""
    if seconds < 0.05:
        return "under 0.1 s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def follow_summary(results: Path, tally: FollowTally, stopped_by: int | None) -> str:
    """The closing lines of ``batchgen poll`` and ``batchgen download``."""
    lines = [f"results: {results}", _follow_line(tally)]
    if tally.held_back_seconds > 0:
        lines.append(f"the provider held the run back {duration(tally.held_back_seconds)} (429)")
    if stopped_by is not None:
        lines.append(RESUME_HINT)
    elif tally.timed_out and tally.pending:
        lines.append(f"gave up waiting with {tally.pending} jobs unfinished: run again to go on")
    return "\n".join(lines)


def _follow_line(tally: FollowTally) -> str:
    finals = _counts(tally.statuses)
    pending = f", still running {tally.pending}" if tally.pending else ""
    files = f"; downloaded {tally.files} files ({tally.bytes / 1e6:,.1f} MB)" if tally.files else ""
    errors = f"; {tally.errors} requests given up (see the log)" if tally.errors else ""
    return f"jobs followed: {tally.followed} ({finals}{pending}){files}{errors}"


RESUME_HINT = "stopped by a signal: run the same command again to resume"


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "nothing"


def summary_json(result: RunResult) -> dict[str, object]:
    """The run's figures for monitoring (``--summary-json``)."""
    finished = result.finished or result.started
    return {
        "results": str(result.results_path),
        "dry_run": result.dry_run,
        "exit_code": result.exit_code,
        "rows": dict(result.statuses),
        "this_run": dict(result.this_run),
        "seconds_of_video_sent": result.plan.seconds_of_video,
        "estimated_cost_usd": {
            "this_run": round(result.cost_of(result.sent_keys), 4),
            "all_rows": round(result.cost_of(result.states), 4),
        },
        "possible_duplicates": result.tally.possible_duplicates,
        "held_back_by_429_seconds": round(held_back_seconds(result), 3),
        "interrupted": result.stopped_by is not None,
        "started": _iso(result.started),
        "finished": _iso(finished),
        "duration_seconds": round(finished - result.started, 3),
        **attention_json(run_attention(result)),
    }


def write_summary_json(result: RunResult, path: Path) -> None:
    """Write :func:`summary_json` to ``path``."""
    _write_json(summary_json(result), path)


def write_failure_json(error: BatchgenError, path: Path) -> None:
    """For monitoring, a run that stopped before submitting: its exit code and why."""
    _write_json({"exit_code": error.exit_code, "error": str(error)}, path)


def _write_json(data: dict[str, object], path: Path) -> None:
    try:
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the summary: {exc.strerror}") from None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
