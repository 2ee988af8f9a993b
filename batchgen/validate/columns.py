"""Checks of a manifest's column names, made once per column rather than once per row.

A wrong column name is wrong for the whole manifest, so these are not row problems that
``--skip-invalid`` could step over: each is reported once, naming the file and the column,
and nothing is sent. A column is refused when

* it is close to a column batchgen understands (:mod:`batchgen.validate.near_miss`: ``sceonds``,
  ``modle``, ``duration``), unless the manifest declares it the team's own
  (``passthrough:``), maps it (``columns:``), or its ``prompt_template`` uses it;
* batchgen writes a column of that name in the results itself (``status``, ``file``,
  ``key``, …), where the user's values would be lost;
* its name cannot be written as UTF-8.

A manifest with no ``prompt`` column (and no ``prompt_template`` to build prompts) is one
problem listing the columns found and the one that is probably the prompt.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from batchgen.columns import ASSET_COLUMNS, BOOKKEEPING_COLUMNS
from batchgen.errors import Problem
from batchgen.manifest import (
    DELIMITED_SUFFIXES,
    ODS_SUFFIXES,
    WORKBOOK_SUFFIXES,
    Manifest,
    ManifestRow,
    display_name,
)
from batchgen.manifest.expand import TAKE_COLUMN, template_fields
from batchgen.validate.near_miss import probable_column
from batchgen.validate.text import escaped, unwritable_message

#: Columns of the results file batchgen fills itself: a manifest column so named is lost.
RESERVED_COLUMNS = frozenset(BOOKKEEPING_COLUMNS + ASSET_COLUMNS)


@dataclass(frozen=True)
class ColumnReport:
    """The problems with a manifest's columns."""

    problems: tuple[Problem, ...]
    covers: frozenset[str]  # columns whose per-row problems these already explain

    @property
    def ok(self) -> bool:
        """True when every column name is fine."""
        return not self.problems


def check_columns(manifest: Manifest, known: Collection[str]) -> ColumnReport:
    """Every problem with ``manifest``'s column names; ``known`` are the columns the
    validator understands (``id``, ``prompt``, ``image``, the profile's extras, …)."""
    places = _Places(manifest)
    problems: list[Problem] = []
    prompt_missing = "prompt" not in manifest.columns and manifest.expansion.prompt_template is None
    exempt = manifest.own_columns | _template_columns(manifest)
    if prompt_missing:  # one message, which also names the prompt's near miss
        problems.append(places.header("prompt", _missing_prompt(manifest, known)))
        exempt |= {name for name in manifest.columns if probable_column(name, known) == "prompt"}
    user_take = _user_take(manifest)
    for name in manifest.columns:
        message = _problem_with(name, user_take=user_take)
        if message is None and name not in exempt:
            message = _near_miss(name, known)
        if message is not None:
            problems.append(places.column(name, message))
    return ColumnReport(tuple(problems), frozenset({"prompt"} if prompt_missing else ()))


def _problem_with(name: str, *, user_take: bool) -> str | None:
    """What is wrong with column ``name`` whatever it might be a misspelling of."""
    why = unwritable_message(name)
    if why is not None:
        return f"the column's name: {why}"
    if name in RESERVED_COLUMNS or (name == TAKE_COLUMN and user_take):
        return (
            f"batchgen writes a column {name!r} in the results itself, and yours would be "
            f"lost: rename it, e.g. my_{name} (a YAML manifest can map it: "
            f"columns: {{{name}: my_{name}}})"
        )
    return None


def _near_miss(name: str, known: Collection[str]) -> str | None:
    target = probable_column(name, known)
    if target is None:
        return None
    return (
        f"unknown column, probably meant {target!r}: rename it {target} (if it is a "
        f"column of your own, declare it in a YAML manifest: passthrough: [{name}])"
    )


def _missing_prompt(manifest: Manifest, known: Collection[str]) -> str:
    found = ", ".join(escaped(name) for name in manifest.columns)
    likely = _likely_prompt(manifest, known)
    if likely is None:
        return f"no prompt column: the columns are {found}; name the column of prompts prompt"
    return (
        f"no prompt column: the columns are {found}; {likely!r} is probably it: rename it "
        f"prompt (a YAML manifest can map it: columns: {{{likely}: prompt}})"
    )


def _likely_prompt(manifest: Manifest, known: Collection[str]) -> str | None:
    """The column most likely meant as the prompt: a misspelling or synonym of it, else
    the unknown column with the most text (prompts are the longest cells of a sheet)."""
    candidates = [
        name
        for name in manifest.columns
        if name not in known and name not in RESERVED_COLUMNS and unwritable_message(name) is None
    ]
    for name in candidates:
        if probable_column(name, known) == "prompt":
            return name
    text = dict.fromkeys(candidates, 0)
    for row in manifest.rows:
        for name in candidates:
            text[name] += len(row.values.get(name, ""))
    best = max(candidates, key=lambda name: text[name], default=None)
    return best if best is not None and text[best] else None


def _template_columns(manifest: Manifest) -> frozenset[str]:
    template = manifest.expansion.prompt_template
    return frozenset(template_fields(template)) if template is not None else frozenset()


def _user_take(manifest: Manifest) -> bool:
    """Whether the user wrote a ``take`` column that takes would overwrite."""
    if TAKE_COLUMN not in manifest.columns:
        return False
    rows = manifest.rows
    takes = manifest.expansion.takes > 1 or any("takes" in row.values for row in rows)
    return takes and any(TAKE_COLUMN in row.values for row in rows)


def _is_spreadsheet(source: str) -> bool:
    return source.lower().endswith(DELIMITED_SUFFIXES + WORKBOOK_SUFFIXES + ODS_SUFFIXES)


@dataclass
class _Places:
    """Where a column is, for its message: a spreadsheet's header row, else the first row
    (the YAML line) that gives it, else the manifest file."""

    manifest: Manifest
    _first: dict[str, ManifestRow] | None = None

    def column(self, name: str, message: str) -> Problem:
        row = self._first_rows().get(name)
        if row is None:
            return self.header(name, message)
        number = 1 if _is_spreadsheet(row.source) else row.number
        return Problem(row.source, number, escaped(name), message)

    def header(self, column: str, message: str) -> Problem:
        rows = self.manifest.rows
        if rows and _is_spreadsheet(rows[0].source):
            return Problem(rows[0].source, 1, column, message)
        source = display_name(self.manifest.path)
        return Problem(source, 1 if _is_spreadsheet(source) else None, column, message)

    def _first_rows(self) -> dict[str, ManifestRow]:
        if self._first is None:
            self._first = {}
            for row, name in self._cells():
                self._first.setdefault(name, row)
        return self._first

    def _cells(self) -> Iterator[tuple[ManifestRow, str]]:
        for row in self.manifest.rows:
            for name in row.values:
                yield row, name
