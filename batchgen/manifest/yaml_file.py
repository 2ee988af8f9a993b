"""Reading a YAML manifest: rows inline or from a ``source:`` spreadsheet, with settings,
renames, defaults, passthrough and matrix; aliases refused so an alias bomb cannot expand."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from batchgen.manifest.delimited import DELIMITED_SUFFIXES
from batchgen.manifest.layout import source_layout
from batchgen.manifest.ods import ODS_SUFFIXES
from batchgen.manifest.spreadsheet import load_spreadsheet
from batchgen.manifest.table import (
    Builder,
    ManifestRow,
    Unreadable,
    cell_text,
    display_name,
    fold_header,
)
from batchgen.manifest.text import BadBytes, decode_text, read_bytes
from batchgen.manifest.workbook import WORKBOOK_SUFFIXES

YAML_KEYS = (
    "base_url", "columns", "defaults", "delimiter", "encoding", "header_row", "image_fit",
    "matrix", "max_cost", "output", "pad_color", "passthrough", "profile", "prompt_template",
    "rows", "sheet", "source", "takes",
)  # fmt: skip
SCALAR_SETTINGS = (
    "base_url", "delimiter", "encoding", "header_row", "image_fit", "max_cost", "output",
    "pad_color", "profile", "prompt_template", "sheet", "source", "takes",
)  # fmt: skip


class _AliasFound(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases, so an alias bomb cannot expand at all."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasFound(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
        return super().compose_node(parent, index)


@dataclass
class _YamlFile:
    loader: _NoAliasLoader
    source: str
    builder: Builder

    def problem(self, node: yaml.Node, message: str, column: str | None = None) -> None:
        self.builder.problem(self.source, _line(node), column, message)

    def construct(self, node: yaml.Node) -> Any:
        """The Python value of ``node``; a bad tag (``!!python/…``) becomes a problem and None."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(node, f"not allowed in a manifest: {_yaml_reason(exc)}")
        except (ValueError, OverflowError) as exc:  # PyYAML lets "2025-13-45" raise ValueError
            self.problem(node, f"not a valid value: {exc}")
        return None

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        """Text of a single value; a list or mapping is a problem."""
        value = self.construct(node)
        if isinstance(value, list | dict | set | tuple | bytes):
            kind = "a list" if isinstance(value, list | set | tuple) else "a nested value"
            self.problem(node, f"{what} must be a single value, not {kind}")
            return None
        return cell_text(value)

    def pairs(self, node: yaml.Node, what: str) -> Iterator[tuple[yaml.Node, str, yaml.Node]]:
        """``(key node, key text, value node)`` of a mapping node; duplicate keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping of column: value")
            return
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node, "a key")
            if key is None:
                continue
            if not key:
                self.problem(key_node, f"{what} has an empty key")
                continue
            if key in seen:
                self.problem(key_node, f"{what} repeats the key {key!r}")
                continue
            seen.add(key)
            yield key_node, key, value_node

    def values(self, node: yaml.Node, what: str) -> dict[str, str]:
        """A row or ``defaults:`` mapping as canonical column -> text (blank values absent)."""
        values: dict[str, str] = {}
        names: set[str] = set()
        for key_node, key, value_node in self.pairs(node, what):
            name = self.builder.name(key)
            if name in names:
                self.problem(key_node, f"{what} gives column {name!r} twice")
            names.add(name)
            text = self.scalar(value_node, f"the value of {key!r}")
            if text:
                values[name] = text
        return values


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem or exc).strip()


def load_yaml(
    path: Path, sheet: str | None, builder: Builder
) -> tuple[list[ManifestRow], dict[str, str], dict[str, tuple[str, ...]]]:
    """Rows, scalar settings and ``matrix:`` of a YAML manifest; problems go to ``builder``."""
    source = display_name(path)
    try:
        text = decode_text(read_bytes(path))
    except BadBytes as exc:
        builder.problem(source, exc.text.count("\n", 0, exc.index) + 1, None, str(exc))
        return [], {}, {}
    except Unreadable as exc:
        builder.problem(source, None, None, str(exc))
        return [], {}, {}
    loader = _NoAliasLoader(text)
    try:
        top = _compose(loader, source, builder)
        if top is None:
            return [], {}, {}
        yaml_file = _YamlFile(loader, source, builder)
        if isinstance(top, yaml.SequenceNode):
            return _yaml_rows(yaml_file, top), {}, {}
        if isinstance(top, yaml.MappingNode):
            return _yaml_mapping(yaml_file, top, path, sheet)
        builder.problem(source, _line(top), None, "expected a list of rows or a mapping with rows:")
        return [], {}, {}
    finally:
        loader.dispose()


def _compose(loader: _NoAliasLoader, source: str, builder: Builder) -> yaml.Node | None:
    try:
        node: yaml.Node | None = loader.get_single_node()
    except _AliasFound as exc:
        message = "YAML aliases (*name) are not supported; put shared values under defaults:"
        builder.problem(source, exc.line, None, message)
        return None
    except RecursionError:
        builder.problem(source, None, None, "not valid YAML: nested too deeply")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        builder.problem(source, line, None, f"not valid YAML: {_yaml_reason(exc)}")
        return None
    if node is None:
        builder.problem(source, None, None, "the file is empty")
    return node


def _yaml_rows(yaml_file: _YamlFile, node: yaml.Node) -> list[ManifestRow]:
    if not isinstance(node, yaml.SequenceNode):
        yaml_file.problem(node, "rows: must be a list of rows")
        return []
    rows: list[ManifestRow] = []
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            yaml_file.problem(item, "a row must be a mapping of column: value")
            continue
        row = yaml_file.builder.row(yaml_file.source, _line(item), yaml_file.values(item, "a row"))
        if row is not None:
            rows.append(row)
    return rows


def _yaml_mapping(
    yaml_file: _YamlFile, top: yaml.Node, path: Path, sheet: str | None
) -> tuple[list[ManifestRow], dict[str, str], dict[str, tuple[str, ...]]]:
    sections: dict[str, yaml.Node] = {}
    for key_node, key, value_node in yaml_file.pairs(top, "the manifest"):
        if key in YAML_KEYS:
            sections[key] = value_node
        else:
            yaml_file.problem(
                key_node, f"unknown key {key!r}; expected one of {', '.join(YAML_KEYS)}"
            )
    settings = _yaml_settings(yaml_file, sections)
    builder = yaml_file.builder
    # Renames and defaults first: they shape every row, from the source file and inline alike.
    if "columns" in sections:
        for _, key, value_node in yaml_file.pairs(sections["columns"], "columns:"):
            target = yaml_file.scalar(value_node, f"columns: {key!r}")
            if target:
                builder.renames[fold_header(key)] = fold_header(target)
    if "defaults" in sections:
        builder.defaults = yaml_file.values(sections["defaults"], "defaults:")
    if "passthrough" in sections:
        builder.own.update(_yaml_names(yaml_file, sections["passthrough"]))
    # The matrix before the source: its columns are not ones the header must hold.
    matrix = _yaml_matrix(yaml_file, sections["matrix"]) if "matrix" in sections else {}
    builder.layout = source_layout(yaml_file.problem, sections, settings, matrix, builder.defaults)
    rows: list[ManifestRow] = []
    if "source" in settings:
        rows += _yaml_source(yaml_file, sections["source"], settings, path, sheet)
    if "rows" in sections:
        rows += _yaml_rows(yaml_file, sections["rows"])
    elif "source" not in sections:
        yaml_file.problem(top, "expected rows: (a list of rows) or source: (a CSV or .xlsx file)")
    return rows, settings, matrix


def _yaml_matrix(yaml_file: _YamlFile, node: yaml.Node) -> dict[str, tuple[str, ...]]:
    """``matrix:``: column -> the list of values every row is expanded over."""
    matrix: dict[str, tuple[str, ...]] = {}
    for key_node, key, value_node in yaml_file.pairs(node, "matrix:"):
        if not isinstance(value_node, yaml.SequenceNode) or not value_node.value:
            yaml_file.problem(value_node, f"matrix: {key!r} must be a list of values", key)
            continue
        texts = [yaml_file.scalar(item, f"a value of matrix: {key!r}") for item in value_node.value]
        values = tuple(dict.fromkeys(t for t in texts if t))
        if len(values) != len(texts):
            yaml_file.problem(key_node, f"matrix: {key!r} has blank or repeated values", key)
        matrix[yaml_file.builder.name(key)] = values
    return matrix


def _yaml_names(yaml_file: _YamlFile, node: yaml.Node) -> list[str]:
    """``passthrough:``: the team's own columns, carried through even if they look like typos."""
    if not isinstance(node, yaml.SequenceNode):
        yaml_file.problem(node, "passthrough: must be a list of column names")
        return []
    names = (yaml_file.scalar(item, "a passthrough: name") for item in node.value)
    return [fold_header(name) for name in names if name]


def _yaml_settings(yaml_file: _YamlFile, sections: Mapping[str, yaml.Node]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key in SCALAR_SETTINGS:
        if key in sections:
            text = yaml_file.scalar(sections[key], f"{key}:")
            if text:
                settings[key] = text
    return settings


def _yaml_source(
    yaml_file: _YamlFile,
    node: yaml.Node,
    settings: Mapping[str, str],
    path: Path,
    sheet: str | None,
) -> list[ManifestRow]:
    source_path = path.parent / settings["source"]
    if source_path.suffix.lower() not in DELIMITED_SUFFIXES + WORKBOOK_SUFFIXES + ODS_SUFFIXES:
        yaml_file.problem(node, "source: must be a .csv, .tsv, .txt, .xlsx or .ods file")
        return []
    if not source_path.is_file():
        yaml_file.problem(node, f"source: file not found: {display_name(source_path)}")
        return []
    chosen_sheet = sheet if sheet is not None else settings.get("sheet")
    return load_spreadsheet(source_path, chosen_sheet, yaml_file.builder, display_name(source_path))
