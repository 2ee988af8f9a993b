"""Loading manifests: the content team's spreadsheet (CSV, TSV, .xlsx) or a YAML file.

This module only reads: it turns every supported file into :class:`ManifestRow` objects
with canonical column names and the row numbers the user sees. Whether a row makes sense
for a provider is :mod:`batchgen.validate.rows`'s business.

Every problem found is collected and raised once, as a :class:`ManifestError`, so the user
can fix them all in one go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchgen.errors import ManifestError
from batchgen.manifest.expand import TAKE_COLUMN, Expansion, ExpansionError, template_fields
from batchgen.manifest.fit import FitError, check_fit
from batchgen.manifest.spreadsheet import load_spreadsheet
from batchgen.manifest.table import Builder, ManifestRow, display_name
from batchgen.manifest.yaml_file import load_yaml

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: its rows plus the settings a YAML manifest may carry."""

    path: Path
    folder: Path
    rows: tuple[ManifestRow, ...]
    columns: tuple[str, ...]
    profile: str | None = None
    base_url: str | None = None
    output: Path | None = None
    max_cost: float | None = None
    image_fit: str | None = None  # cover, contain, stretch or none, for every row
    pad_color: str | None = None
    expansion: Expansion = field(default_factory=Expansion)
    own_columns: frozenset[str] = frozenset()  # passthrough: and columns: targets, never typos
    notes: tuple[str, ...] = ()  # what reading decided, for validate (rows above the header)


def load_manifest(path: Path, *, sheet: str | None = None) -> Manifest:
    """Load a manifest file (.csv, .tsv, .txt, .xlsx, .ods, .yaml), raising :class:`ManifestError`.

    ``sheet`` picks a worksheet of an .xlsx or .ods file (for YAML, of its ``source:``); the first
    sheet is used otherwise.
    """
    builder = Builder()
    suffix = path.suffix.lower()
    settings: dict[str, str] = {}
    matrix: dict[str, tuple[str, ...]] = {}
    if suffix in YAML_SUFFIXES:
        rows, settings, matrix = load_yaml(path, sheet, builder)
    else:
        rows = load_spreadsheet(path, sheet, builder, display_name(path))
    numbers = _numeric_settings(settings, display_name(path), builder)
    _check_expansion_settings(settings, display_name(path), builder)
    if builder.problems:
        raise ManifestError(builder.problems)
    folder = path.parent
    expansion = Expansion(settings.get("prompt_template"), matrix, int(numbers.get("takes", 1)))
    builder.columns.update(dict.fromkeys(builder.defaults))
    builder.columns.update(dict.fromkeys(expansion.columns))
    if any("takes" in row.values for row in rows):
        builder.columns[TAKE_COLUMN] = None  # a row's own takes: the results say which take
    output = settings.get("output")
    return Manifest(
        path=path,
        folder=folder,
        rows=tuple(rows),
        columns=tuple(builder.columns),
        profile=settings.get("profile"),
        base_url=settings.get("base_url"),
        output=None if output is None else folder / output,
        max_cost=numbers.get("max_cost"),
        image_fit=settings.get("image_fit"),
        pad_color=settings.get("pad_color"),
        expansion=expansion,
        own_columns=frozenset(builder.own | set(builder.renames.values())),
        notes=tuple(builder.notes),
    )


def _check_expansion_settings(settings: Mapping[str, str], source: str, builder: Builder) -> None:
    """A malformed ``prompt_template:`` or ``image_fit:`` is one problem, not one per row."""
    try:
        if "prompt_template" in settings:
            template_fields(settings["prompt_template"])
    except ExpansionError as exc:
        builder.problem(source, None, exc.column, exc.message)
    try:
        check_fit(settings.get("image_fit", "none"), settings.get("pad_color", "black"))
    except FitError as exc:
        builder.problem(source, None, "image_fit", str(exc))


def _numeric_settings(
    settings: Mapping[str, str], source: str, builder: Builder
) -> dict[str, float]:
    """``max_cost:`` (a number of USD) and ``takes:`` (a whole number from 1), checked."""
    numbers: dict[str, float] = {}
    for key, whole in (("max_cost", False), ("takes", True)):
        if key not in settings:
            continue
        try:
            number = float(settings[key])
        except ValueError:
            number = -1.0
        if number < (1 if whole else 0) or (whole and number != int(number)) or number > 1e9:
            kind = "a whole number from 1" if whole else "a number of US dollars"
            builder.problem(source, None, key, f"{settings[key]!r} is not {kind}")
            continue
        numbers[key] = number
    return numbers
