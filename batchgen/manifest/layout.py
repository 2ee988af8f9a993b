"""A YAML wrapper's settings for reading its ``source:`` spreadsheet: ``header_row:``,
``delimiter:`` and ``encoding:`` checked, and the columns a ``prompt_template:`` takes from
each row (a row holding them all is the header) worked out."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import yaml

from batchgen.manifest.delimited import DELIMITED_SUFFIXES
from batchgen.manifest.expand import TAKE_COLUMN, ExpansionError, template_fields
from batchgen.manifest.table import Layout
from batchgen.manifest.text import check_encoding

#: ``problem(node, message, column)``: a problem at the node's line in the YAML file.
Report = Callable[[yaml.Node, str, "str | None"], None]

#: Words for delimiters, since a tab is awkward to type in YAML.
DELIMITER_WORDS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}


def source_layout(
    problem: Report,
    sections: Mapping[str, yaml.Node],
    settings: Mapping[str, str],
    matrix: Mapping[str, object],
    defaults: Mapping[str, str],
) -> Layout:
    """The :class:`Layout` of the ``source:`` file; a bad setting is a problem, then unset."""
    text_only = [key for key in ("delimiter", "encoding") if key in sections]
    source = settings.get("source", "")
    for key in ("header_row", *text_only):
        if key in sections and not source:
            problem(sections[key], f"{key}: applies to a source: spreadsheet; there is none", None)
    for key in text_only:
        if source and not source.lower().endswith(DELIMITED_SUFFIXES):
            problem(sections[key], f"{key}: applies to a CSV or TSV source:, not {source}", None)
    return Layout(
        header_row=_header_row(problem, sections, settings),
        delimiter=_delimiter(problem, sections),
        encoding=_encoding(problem, sections, settings),
        template_columns=_template_columns(settings, matrix, defaults),
    )


def _header_row(
    problem: Report, sections: Mapping[str, yaml.Node], settings: Mapping[str, str]
) -> int | None:
    text = settings.get("header_row")
    if text is None:
        return None
    if not text.isdigit() or int(text) < 1:
        problem(sections["header_row"], f"header_row: {text!r} is not a row number from 1", None)
        return None
    return int(text)


def _delimiter(problem: Report, sections: Mapping[str, yaml.Node]) -> str | None:
    # The node's own text: settings are stripped, and a tab ("\t") is whitespace.
    node = sections.get("delimiter")
    if not isinstance(node, yaml.ScalarNode):
        return None  # absent, or a list already reported as not a single value
    raw = str(node.value)
    value = DELIMITER_WORDS.get(raw.strip().lower(), raw)
    if len(value) != 1 or value in "\"'\r\n" or value.isalnum():
        words = ", ".join(DELIMITER_WORDS)
        problem(node, f"delimiter: {raw!r} is not one character (or {words})", None)
        return None
    return value


def _encoding(
    problem: Report, sections: Mapping[str, yaml.Node], settings: Mapping[str, str]
) -> str | None:
    name = settings.get("encoding")
    if name is None:
        return None
    reason = check_encoding(name)
    if reason is not None:
        problem(sections["encoding"], f"encoding: {reason}", None)
        return None
    return name


def _template_columns(
    settings: Mapping[str, str], matrix: Mapping[str, object], defaults: Mapping[str, str]
) -> frozenset[str]:
    """Columns the template takes from the rows themselves (not matrix, defaults or take)."""
    try:
        fields = template_fields(settings.get("prompt_template", ""))
    except ExpansionError:
        return frozenset()  # reported once by the loader
    given = {*matrix, *defaults, TAKE_COLUMN}
    return frozenset(name for name in fields if name not in given)
