"""Help that teaches: options in sections by what they decide, commands in workflow order.

Click has no option groups; :class:`SectionedCommand` prints its options under the
headings of :data:`SECTIONS` (by parameter name, one home for every option's section),
and :class:`WorkflowGroup` lists the commands in the order a batch uses them, each with a
one-line example.
"""

from __future__ import annotations

from collections.abc import Mapping

import click

WHAT = "What to send"
WHERE = "Where to"
PACE = "How fast"
FOLLOW = "Following"
OUTPUT = "Output"
SAFETY = "Safety"
OTHER = "Other options"
ORDER = (WHAT, WHERE, PACE, FOLLOW, OUTPUT, SAFETY, OTHER)

#: The section of every option, by its parameter name; an option not listed is "Other".
SECTIONS: Mapping[str, str] = {
    **dict.fromkeys(
        ("sheet", "image_root", "limit", "skip_invalid", "retry_rejected", "mock"), WHAT
    ),
    **dict.fromkeys(
        ("profile", "base_url", "api_key_env", "allowed_base_urls", "allowed", "allow_insecure"),
        WHERE,
    ),
    **dict.fromkeys(
        ("concurrency", "rpm", "max_attempts", "backoff", "request_timeout", "give_up_after"),
        PACE,
    ),
    "max_running": PACE,
    **dict.fromkeys(
        ("wait", "timeout", "poll_rpm", "poll_interval", "download_dir", "variants", "thumbnails"),
        FOLLOW,
    ),
    **dict.fromkeys(
        ("out", "name_template", "summary_json", "notify", "log_file", "progress", "list_rows"),
        OUTPUT,
    ),
    # the report's exports, and what it summarises by
    **dict.fromkeys(("csv_path", "xlsx_path", "html_path", "json_path", "group_by"), OUTPUT),
    **dict.fromkeys(("max_cost", "max_jobs", "dry_run", "resend_unresolved", "grace"), SAFETY),
}

#: The commands in the order a batch uses them, each with a one-line example.
WORKFLOW: tuple[tuple[str, str], ...] = (
    ("init", "batchgen init spring/ --profile new-api"),
    ("profiles", "batchgen profiles new-api"),
    ("doctor", "batchgen doctor --profile new-api   # with OPENAI_BASE_URL set"),
    ("config", "batchgen config spring/manifest.xlsx"),
    ("validate", "batchgen validate spring/manifest.xlsx"),
    ("run", "batchgen run spring/manifest.xlsx --wait --download videos/"),
    ("poll", "batchgen poll spring/manifest.results.csv --wait"),
    ("download", "batchgen download spring/manifest.results.csv --to videos/"),
    ("report", "batchgen report spring/manifest.results.csv --html report.html"),
    ("resolve", "batchgen resolve spring/manifest.results.csv c-07 --job-id video_123"),
    ("repair", "batchgen repair spring/manifest.results.csv"),
    ("serve-mock", "batchgen serve-mock --profile new-api --port 8000"),
)
COMPLETION = (
    'Shell completion: eval "$(_BATCHGEN_COMPLETE=bash_source batchgen)" in ~/.bashrc '
    "(zsh_source in ~/.zshrc; fish_source > ~/.config/fish/completions/batchgen.fish)."
)


class SectionedCommand(click.Command):
    """A command whose --help prints its options in sections (:data:`SECTIONS`)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The options, a section at a time in :data:`ORDER`; arguments are in the usage."""
        rows: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Argument):
                continue  # the usage line names the arguments; the docstring says them
            record = param.get_help_record(ctx)
            if record is not None:
                section = SECTIONS.get(param.name or "", OTHER)
                rows.setdefault(section, []).append(record)
        for section in ORDER:
            if section in rows:
                with formatter.section(section):
                    formatter.write_dl(rows[section])


class WorkflowGroup(click.Group):
    """A group that lists its commands in workflow order, each with an example."""

    command_class = SectionedCommand

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands of :data:`WORKFLOW` in its order, then any others by name."""
        known = [name for name, _ in WORKFLOW if name in self.commands]
        return known + sorted(set(self.commands) - set(known))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's one-line summary, and below it an example."""
        examples = dict(WORKFLOW)
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            command = self.commands[name]
            if command.hidden:
                continue
            # the whole first sentence: cut at a fixed width, the summaries said too little
            summary = command.get_short_help_str(limit=300)
            example = examples.get(name)
            rows.append((name, summary))
            if example:
                rows.append(("", f"e.g. {example}"))
        with formatter.section("Commands, in the order a batch uses them"):
            formatter.write_dl(rows)
