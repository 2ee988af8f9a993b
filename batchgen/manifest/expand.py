"""Expanding manifest rows: prompt templates, matrices and takes.

One spreadsheet row can stand for many videos: ``matrix:`` (for example
``style: [anime, comic]`` and ``seconds: [4, 8]``) asks for the cross product, and
``takes: N`` for N videos of the same row. Each variant is its own row for the rest of
the pipeline, with its own stable key; the matrix values and the take number are carried
into the results. ``prompt_template:`` builds each prompt from the row's columns.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

TAKE_COLUMN = "take"
MAX_TAKES = 100


class ExpansionError(Exception):
    """A row cannot be expanded; ``column`` names the cell to fix."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Expansion:
    """The manifest's expansion settings."""

    prompt_template: str | None = None
    matrix: Mapping[str, Sequence[str]] = field(default_factory=dict)
    takes: int = 1

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns the expansion adds to every row (for the results file's header)."""
        return (*self.matrix, TAKE_COLUMN) if self.takes > 1 else tuple(self.matrix)

    @property
    def is_plain(self) -> bool:
        """No template, matrix or takes: each row is one video, as written."""
        return self.prompt_template is None and not self.matrix and self.takes == 1

    def count(self) -> int:
        """Variants per row before a row's own ``takes``."""
        combinations = 1
        for values in self.matrix.values():
            combinations *= len(values)
        return combinations * self.takes


@dataclass(frozen=True)
class Variant:
    """One video a row asks for: its values, and the suffix that tells it from its siblings."""

    values: Mapping[str, str]
    suffix: str  # "" for a row that expands to itself


def template_fields(template: str) -> list[str]:
    """The ``{column}`` names in a template; raises ExpansionError for anything fancier."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ExpansionError("prompt_template", f"malformed template: {exc}") from None
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ExpansionError(
                "prompt_template", f"placeholder {{{name}}} must be a plain column name"
            )
        names.append(name.lower())
    return names


def expand_row(values: Mapping[str, str], expansion: Expansion) -> list[Variant]:
    """Every variant ``values`` asks for, in a stable order (``values`` itself when the row
    stands for one video as written)."""
    if expansion.is_plain and "takes" not in values:
        return [Variant(values, "")]  # most manifests: no copy of each of 100,000 rows
    takes = _takes(values, expansion.takes)
    names = list(expansion.matrix)
    variants = []
    for combination in itertools.product(*(expansion.matrix[n] for n in names)):
        chosen = dict(zip(names, combination, strict=True))
        for take in range(1, takes + 1):
            merged = {**values, **chosen}
            merged.pop("takes", None)
            if takes > 1 or expansion.takes > 1:
                merged[TAKE_COLUMN] = str(take)
            if expansion.prompt_template is not None:
                merged["prompt"] = fill_template(expansion.prompt_template, merged)
            variants.append(Variant(merged, _suffix(chosen, take, takes)))
    return variants


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """The template with each ``{column}`` replaced; a missing column is an ExpansionError."""
    missing = [name for name in template_fields(template) if not values.get(name)]
    if missing:
        raise ExpansionError(
            "prompt_template", f"the template needs column {missing[0]!r}, which is empty or absent"
        )
    lowered = {k.lower(): v for k, v in values.items()}
    parts = []
    for text, name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(text)
        if name is not None:
            parts.append(lowered[name.lower()])
    return "".join(parts)


def _takes(values: Mapping[str, str], default: int) -> int:
    raw = values.get("takes")
    if raw is None:
        return default
    try:
        takes = int(float(raw))
    except ValueError:
        takes = 0
    if not 1 <= takes <= MAX_TAKES or float(raw) != takes:
        raise ExpansionError("takes", f"{raw!r} is not a whole number from 1 to {MAX_TAKES}")
    return takes


def _suffix(chosen: Mapping[str, str], take: int, takes: int) -> str:
    parts = [f"{name}={value}" for name, value in chosen.items()]
    if takes > 1:
        parts.append(f"take{take}")
    return "[" + ",".join(parts) + "]" if parts else ""
