"""``batchgen init``: a starter folder a team can fill in without reading the profiles' YAML.

The workbook's model, size, seconds and extra-field columns carry dropdowns (Excel data
validation) built from the profile, so the allowed values travel with the sheet; its
example rows pass ``batchgen validate`` as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from batchgen.errors import UsageError
from batchgen.profile import Profile

MANIFEST_NAME = "manifest.xlsx"
CONFIG_NAME = "batchgen.toml"
IMAGES_NAME = "images"
INSTRUCTIONS_SHEET = "instructions"
#: Rows a dropdown covers below the header: far more than a night's batch.
DROPDOWN_ROWS = 1000
#: Excel refuses an inline list longer than this (the formula's limit).
INLINE_LIST_LIMIT = 255
EXAMPLE_PROMPTS = (
    "A paper boat drifting down a rain-soaked street, evening lights reflecting",
    "Sunset over rolling hills, slow aerial push-in, warm light",
    "A cat in a tiny chef's hat kneading dough, close-up, soft morning light",
)
WIDTHS = {"id": 14, "prompt": 70, "image": 28, "campaign": 16}


@dataclass(frozen=True)
class Starter:
    """What ``batchgen init`` wrote: the workbook, the config file (None if one was kept)."""

    manifest: Path
    config: Path | None
    images: Path


def write_starter(folder: Path, profile: Profile, profile_ref: str) -> Starter:
    """Write ``folder/manifest.xlsx``, ``folder/images/`` and ``folder/batchgen.toml`` for
    ``profile`` (named ``profile_ref`` in the config). An existing folder is fine; an
    existing workbook is never overwritten, and an existing config file is kept."""
    manifest = folder / MANIFEST_NAME
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: is a file, not a folder")
    if manifest.exists():
        raise UsageError(f"{manifest}: already exists; not overwritten (choose another folder)")
    try:
        images = folder / IMAGES_NAME
        images.mkdir(parents=True, exist_ok=True)
        _save_new(starter_workbook(profile), manifest)
        config = _write_config(folder / CONFIG_NAME, profile_ref)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot write the starter files: {exc.strerror}") from None
    return Starter(manifest, config, images)


def starter_workbook(profile: Profile) -> Workbook:
    """The starter workbook: a manifest sheet with dropdowns and examples, then instructions."""
    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)  # a new workbook always has its first sheet
    sheet.title = "manifest"
    header = columns_for(profile)
    sheet.append(header)
    for row in example_rows(profile, header):
        sheet.append(row)
    _style_header(sheet, header)
    _add_dropdowns(sheet, header, profile)
    _write_instructions(workbook.create_sheet(INSTRUCTIONS_SHEET), profile)
    return workbook


def columns_for(profile: Profile) -> list[str]:
    """The starter's header: the columns every profile takes, its extras, a team column."""
    return ["id", "prompt", "image", "model", "size", "seconds", *profile.extra_fields, "campaign"]


def choices(profile: Profile) -> dict[str, tuple[str, ...]]:
    """The dropdown values of each column that has a fixed set of them."""
    lists = {
        "model": tuple(profile.models),
        "size": profile.all_sizes,
        "seconds": profile.seconds,
    }
    for name, extra in profile.extra_fields.items():
        if extra.boolean:
            lists[name] = ("true", "false")
        elif extra.values:
            lists[name] = extra.values
    return {name: values for name, values in lists.items() if values}


def example_rows(profile: Profile, header: Sequence[str]) -> list[list[object]]:
    """A few rows that pass validation: the default model at each of its sizes, the
    profile's seconds in turn, and each listed extra field's first value on the first row."""
    model = profile.defaults.get("model") or next(iter(profile.models))
    sizes = profile.models.get(model) or profile.all_sizes
    lists = choices(profile)
    rows = []
    for index, prompt in enumerate(EXAMPLE_PROMPTS):
        values: dict[str, object] = {
            "id": f"example-{index + 1}",
            "prompt": prompt,
            "model": model,
            "size": sizes[index % len(sizes)],
            "seconds": int(profile.seconds[index % len(profile.seconds)]),
            "campaign": "starter",
        }
        for name, extra in profile.extra_fields.items():
            if index == 0 and name in lists and not extra.boolean:  # booleans: blank, not sent
                values[name] = lists[name][0]
        rows.append([values.get(column) for column in header])
    return rows


def _style_header(sheet: Worksheet, header: Sequence[str]) -> None:
    for col, name in enumerate(header, start=1):
        sheet.cell(row=1, column=col).font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(col)].width = WIDTHS.get(name, 14)
    sheet.freeze_panes = "A2"  # the header stays in view however long the batch


def _add_dropdowns(sheet: Worksheet, header: Sequence[str], profile: Profile) -> None:
    for name, values in choices(profile).items():
        letter = get_column_letter(header.index(name) + 1)
        listed = ",".join(values)
        if len(listed) > INLINE_LIST_LIMIT:
            continue  # Excel would refuse to open the file; validate still checks the values
        # a relay that takes other models (new-api) gets a warning, not a refusal
        strict = not (name == "model" and profile.other_models)
        rule = DataValidation(
            type="list",
            formula1=f'"{listed}"',
            allow_blank=True,  # a blank cell means the profile's default
            showErrorMessage=True,
            errorStyle="stop" if strict else "warning",
            errorTitle=f"Not a {name} this profile takes",
            error=f"{profile.name} takes: {', '.join(values)}",
            promptTitle=name,
            prompt=_default_note(profile, name),
            showInputMessage=True,
        )
        rule.add(f"{letter}2:{letter}{DROPDOWN_ROWS + 1}")
        sheet.add_data_validation(rule)


def _default_note(profile: Profile, name: str) -> str:
    default = profile.defaults.get(name)
    return f"Blank means {default}." if default else "Blank means not sent."


def instructions(profile: Profile) -> list[str]:
    """The lines of the instructions sheet: what each column means and how to run."""
    lists = choices(profile)
    lines = [
        f"Starter manifest for the {profile.name} profile. Fill in the 'manifest' sheet: "
        "one row per video. Keep it the first sheet.",
        "",
        "Columns (blank cells use the profile's default; header case does not matter):",
        "  id: your own key for the row. Keep it when you edit the row: a row already sent "
        "is never paid for twice.",
        "  prompt (required): what the video shows.",
        "  image: a reference image in the images/ folder, e.g. images/shot-01.png; "
        "JPEG, PNG or WEBP, exactly the video's size.",
    ]
    for name, values in lists.items():
        lines.append(f"  {name}: one of {', '.join(values)}. {_default_note(profile, name)}")
    lines += [
        "  campaign, and any other column you add: carried into the results unchanged.",
        "",
        "Before sending, check every row and see what a run would cost:",
        "  batchgen validate manifest.xlsx",
        "  batchgen run manifest.xlsx --dry-run --list",
        "Try the whole flow on the built-in simulated API (no key, no network, no cost):",
        "  batchgen run manifest.xlsx --mock --wait --download videos/",
        "Then for real (the key is read from $OPENAI_API_KEY, never from a file):",
        "  batchgen run manifest.xlsx --base-url https://relay.example.com/v1 --wait "
        "--download videos/",
        "Running the same command again resumes: rows already sent are not sent again.",
        "Settings you would rather not type each time: see batchgen.toml beside this file.",
    ]
    return lines


def _write_instructions(sheet: Worksheet, profile: Profile) -> None:
    sheet.column_dimensions["A"].width = 110
    for line in instructions(profile):
        sheet.append([line])
    sheet.cell(row=1, column=1).font = Font(bold=True)
    for (cell,) in sheet.iter_rows(min_col=1, max_col=1):
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _save_new(workbook: Workbook, path: Path) -> None:
    """Save to ``path`` only if nothing is there: exclusive creation, so never an overwrite."""
    try:
        with path.open("xb") as handle:
            workbook.save(handle)
    except FileExistsError:
        raise UsageError(f"{path}: already exists; not overwritten") from None
    except BaseException:
        path.unlink(missing_ok=True)  # a half-written workbook would fail to open
        raise


def config_text(profile_ref: str) -> str:
    """The commented project config: the profile set, every other setting explained."""
    quoted = profile_ref.replace("\\", "\\\\").replace('"', '\\"')
    return CONFIG_TEMPLATE.format(profile=quoted)


def _write_config(path: Path, profile_ref: str) -> Path | None:
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(config_text(profile_ref))
    except FileExistsError:
        return None  # the team's own settings win over a template
    return path


CONFIG_TEMPLATE = """\
# batchgen project settings for the manifests in this folder.
# Flags, the manifest and the environment win over these; remove the leading "# " to use one.
#
# Never put the API key here, nor the provider's address: this file travels with the
# manifest, and an address here could send your key elsewhere. Set them where only you
# can: export OPENAI_API_KEY=... and OPENAI_BASE_URL=..., --base-url, or your own
# ~/.config/batchgen/config.toml.

# The provider profile the workbook's dropdowns were made for (`batchgen profiles`).
profile = "{profile}"

# Creates per minute, evenly paced (no burst at the start). Default 60.
# rpm = 60

# Requests in flight at once. Default 4.
# concurrency = 4

# Seconds before a job's first status check; adapts after. Default 5.
# poll_interval = 5

# Status checks (polls, list pages) per minute at most; fewer after a 429. Default 600.
# poll_rpm = 600

# With waiting: give up after this many seconds (a rerun goes on). Default: no limit.
# timeout = 21600

# Download finished videos into this folder (relative to this file) as they complete.
# download = "videos"

# The results CSV. Default: manifest.results.csv beside the manifest.
# output = "manifest.results.csv"
"""
