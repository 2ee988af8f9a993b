"""Loading manifests written by the tools a content team really uses."""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import openpyxl
import pytest

from batchgen.errors import ManifestError
from batchgen.manifest import Manifest, load_manifest


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages name files relative to the current folder.
    monkeypatch.chdir(tmp_path)


def write_csv(
    path: Path, rows: Sequence[Sequence[object]], encoding: str = "utf-8", **kw: str
) -> Path:
    with path.open("w", encoding=encoding, newline="") as stream:
        csv.writer(stream, **kw).writerows(rows)  # type: ignore[arg-type]
    return path


def problems_of(path: Path, **kw: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, **kw)
    return [str(p) for p in caught.value.problems]


def as_table(manifest: Manifest) -> list[tuple[str, int, dict[str, str]]]:
    return [(row.source, row.number, row.values) for row in manifest.rows]


# --- CSV ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030"])
def test_csv_in_every_encoding_excel_writes(tmp_path: Path, encoding: str) -> None:
    path = write_csv(
        tmp_path / "shots.csv",
        [
            [" Prompt ", "SECONDS", "Image", "备注"],
            ["一只猫在屋顶上\n夕阳西下", "8", "cat.png", "第一条"],
            ["", "", "", ""],
            ["  a dog  ", " 4 ", "", "x"],
        ],
        encoding=encoding,
    )
    assert b"\r\n" in path.read_bytes().replace(b"\x00", b"")  # csv module's default: CRLF

    manifest = load_manifest(path)

    assert as_table(manifest) == [
        (
            "shots.csv",
            2,
            {
                "prompt": "一只猫在屋顶上\n夕阳西下",
                "seconds": "8",
                "image": "cat.png",
                "备注": "第一条",
            },
        ),
        ("shots.csv", 4, {"prompt": "a dog", "seconds": "4", "备注": "x"}),
    ]
    assert manifest.columns == ("prompt", "seconds", "image", "备注")
    assert manifest.folder == path.parent
    assert (manifest.profile, manifest.base_url, manifest.output) == (None, None, None)


def test_a_cell_spanning_lines_is_one_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["prompt"], ["line one\nline two\nline three"], ["next"]])
    assert [(row.number, row.values["prompt"]) for row in load_manifest(path).rows] == [
        (2, "line one\nline two\nline three"),
        (3, "next"),
    ]


def test_tsv_and_excel_unicode_text(tmp_path: Path) -> None:
    tsv = write_csv(tmp_path / "m.tsv", [["prompt", "size"], ["a, b", "720x1280"]], delimiter="\t")
    # Excel's "Unicode Text" export: UTF-16 with BOM, tab-separated, named .txt.
    txt = write_csv(
        tmp_path / "m.txt", [["prompt", "size"], ["a, b", "720x1280"]], "utf-16", delimiter="\t"
    )
    for path in (tsv, txt):
        assert as_table(load_manifest(path)) == [
            (path.name, 2, {"prompt": "a, b", "size": "720x1280"})
        ]


def test_header_only_gives_no_rows(tmp_path: Path) -> None:
    manifest = load_manifest(write_csv(tmp_path / "m.csv", [["prompt", "notes"]]))
    assert manifest.rows == ()
    assert manifest.columns == ("prompt", "notes")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_bytes(b"")
    assert problems_of(tmp_path / "m.csv") == ["m.csv: the file is empty"]
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf\r\n")
    assert problems_of(tmp_path / "bom.csv") == ["bom.csv: the file is empty"]


def test_binary_file(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert problems_of(tmp_path / "m.csv") == [
        "m.csv: is binary, not text (it contains NUL bytes); if it is UTF-16 without a "
        "byte-order mark, save it as UTF-8"
    ]


def test_workbook_named_csv(tmp_path: Path) -> None:
    openpyxl.Workbook().save(tmp_path / "m.xlsx")
    (tmp_path / "m.csv").write_bytes((tmp_path / "m.xlsx").read_bytes())
    assert problems_of(tmp_path / "m.csv") == [
        "m.csv: is a zip file (an Excel workbook?), not text: name it .xlsx"
    ]


def test_unbalanced_quotes_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('prompt,seconds\r\nfine,4\r\n"never closed,8\r\nmore,4\r\n', encoding="utf-8")
    assert problems_of(path) == [
        "m.csv:3: unbalanced quotes: a quoted cell starting in this row is never closed"
    ]


def test_duplicate_headers_after_folding(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["Prompt", "seconds", " PROMPT "], ["a", "4", "b"]])
    assert problems_of(path) == [
        "m.csv:1: prompt: duplicate column: columns A and C both mean 'prompt'"
    ]


def test_value_without_header(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "m.csv", [["prompt", ""], ["a", ""], ["b", "stray"], ["c", "", "x"]]
    )
    assert problems_of(path) == [
        "m.csv:3: column B has a value but no header",
        "m.csv:4: column C has a value but no header",
    ]


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.csv") == ["nope.csv: file not found"]
    (tmp_path / "m.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    assert problems_of(tmp_path / "m.xls") == [
        "m.xls: unsupported file type '.xls': use .csv, .tsv, .txt, .xlsx, .ods or .yaml "
        "(save an old .xls workbook as .xlsx)"
    ]


def test_source_outside_cwd_is_named_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "m.csv", [["prompt"], ["a"]])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_manifest(path).rows[0].source == str(path)


# --- .xlsx -------------------------------------------------------------------------------


def save_workbook(path: Path, rows: Sequence[Sequence[object]], title: str = "Sheet") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def test_xlsx_typed_cells(tmp_path: Path) -> None:
    path = save_workbook(
        tmp_path / "m.xlsx",
        [
            ["Prompt", "Seconds", "ratio", "watermark", "date", "notes"],
            ["a cat", 8, 8.5, True, dt.datetime(2025, 3, 1), "multi\nline"],
            ["a dog", 8.0, 2, False, dt.datetime(2025, 3, 1, 9, 30), None],
        ],
    )
    assert as_table(load_manifest(path)) == [
        (
            "m.xlsx",
            2,
            {
                "prompt": "a cat",
                "seconds": "8",
                "ratio": "8.5",
                "watermark": "true",
                "date": "2025-03-01",
                "notes": "multi\nline",
            },
        ),
        (
            "m.xlsx",
            3,
            {
                "prompt": "a dog",
                "seconds": "8",
                "ratio": "2",
                "watermark": "false",
                "date": "2025-03-01T09:30:00",
            },
        ),
    ]


def test_xlsx_merged_cells_and_trailing_empty_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["prompt", "notes", "extra"])
    sheet.append(["a", "spans two columns", None])
    sheet.merge_cells("B2:C2")
    sheet.append(["b", None, "c"])
    # Formatting far below the data is what Excel leaves behind after rows are deleted.
    for row in range(4, 40):
        sheet.cell(row=row, column=1).number_format = "0.00"
    sheet.cell(row=50, column=2).value = None
    workbook.save(tmp_path / "m.xlsx")

    assert as_table(load_manifest(tmp_path / "m.xlsx")) == [
        ("m.xlsx", 2, {"prompt": "a", "notes": "spans two columns"}),
        ("m.xlsx", 3, {"prompt": "b", "extra": "c"}),
    ]


def test_xlsx_named_sheet(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Notes"
    first.append(["not", "this"])
    second = workbook.create_sheet("Shots")
    second.append(["prompt"])
    second.append(["from shots"])
    workbook.save(tmp_path / "m.xlsx")

    assert load_manifest(tmp_path / "m.xlsx", sheet="Shots").rows[0].values == {
        "prompt": "from shots"
    }
    assert load_manifest(tmp_path / "m.xlsx").columns == ("not", "this")
    assert problems_of(tmp_path / "m.xlsx", sheet="Shot") == [
        "m.xlsx: no sheet named 'Shot'; the sheets are: Notes, Shots"
    ]


def test_xlsx_formula_without_saved_value(tmp_path: Path) -> None:
    # openpyxl writes formulas without results, like a file never opened in Excel.
    path = save_workbook(tmp_path / "m.xlsx", [["prompt", "seconds"], ["a", 4], ["b", "=B2*2"]])
    assert problems_of(path) == [
        "m.xlsx:3: cell B3 is a formula with no saved value: open and save the file in Excel "
        "so the result is stored"
    ]


def test_xlsx_formula_uses_saved_value(tmp_path: Path) -> None:
    path = save_workbook(tmp_path / "m.xlsx", [["prompt", "seconds"], ["a", 4], ["b", "=B2*2"]])
    add_cached_value(path, "B3", "8")
    assert [row.values["seconds"] for row in load_manifest(path).rows] == ["4", "8"]


def add_cached_value(path: Path, cell: str, value: str) -> None:
    """Store a formula result as Excel does (openpyxl cannot)."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    name = "xl/worksheets/sheet1.xml"
    xml = parts[name].decode()
    xml, count = re.subn(
        rf'(<c r="{cell}"[^>]*>)<f>([^<]*)</f><v\s*/?>(</v>)?',
        rf"\1<f>\2</f><v>{value}</v>",
        xml,
    )
    assert count == 1
    parts[name] = xml.encode()
    with zipfile.ZipFile(path, "w") as target:
        for part, data in parts.items():
            target.writestr(part, data)


def test_xlsx_error_value(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["prompt"])
    sheet["A2"] = "#N/A"
    sheet["A2"].data_type = "e"
    workbook.save(tmp_path / "m.xlsx")
    assert problems_of(tmp_path / "m.xlsx") == ["m.xlsx:2: cell A2 holds the Excel error #N/A"]


def test_xlsx_that_is_not_a_workbook(tmp_path: Path) -> None:
    (tmp_path / "m.xlsx").write_text("prompt\na\n")
    [problem] = problems_of(tmp_path / "m.xlsx")
    assert problem.startswith("m.xlsx: is not a readable .xlsx workbook (")


def test_empty_sheet(tmp_path: Path) -> None:
    openpyxl.Workbook().save(tmp_path / "m.xlsx")
    assert problems_of(tmp_path / "m.xlsx") == ["m.xlsx: the first sheet is empty"]


# --- YAML --------------------------------------------------------------------------------


def test_yaml_list_of_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "# shots for Monday\n"
        "- prompt: a cat\n"
        "  seconds: 8.0\n"
        "  watermark: true\n"
        "\n"
        "- Prompt: |\n"
        "    two\n"
        "    lines\n"
        "  seconds: 4\n"
        "  notes: ~\n",
        encoding="utf-8",
    )
    manifest = load_manifest(path)
    assert as_table(manifest) == [
        ("m.yaml", 2, {"prompt": "a cat", "seconds": "8", "watermark": "true"}),
        ("m.yaml", 6, {"prompt": "two\nlines", "seconds": "4"}),
    ]
    assert manifest.columns == ("prompt", "seconds", "watermark")


def test_yaml_mapping_with_source_defaults_and_columns(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_csv(
        tmp_path / "data" / "sheet.csv",
        [["Prompt Text", "Secs", "Campaign"], ["a", "", "spring"], ["", "", ""], ["b", "12", "x"]],
    )
    path = tmp_path / "m.yml"
    path.write_text(
        "profile: relay\n"
        "base_url: https://relay.example/v1\n"
        "output: out/results.csv\n"
        "source: data/sheet.csv\n"
        "columns: {Prompt Text: prompt, secs: Seconds}\n"
        "defaults:\n"
        "  seconds: 8\n"
        "  style: comic\n"
        "rows:\n"
        "  - prompt: inline\n",
        encoding="utf-8",
    )
    manifest = load_manifest(path)
    assert as_table(manifest) == [
        (
            "data/sheet.csv",
            2,
            {"prompt": "a", "campaign": "spring", "seconds": "8", "style": "comic"},
        ),
        ("data/sheet.csv", 4, {"prompt": "b", "seconds": "12", "campaign": "x", "style": "comic"}),
        ("m.yml", 10, {"prompt": "inline", "seconds": "8", "style": "comic"}),
    ]
    assert manifest.columns == ("prompt", "seconds", "campaign", "style")
    assert manifest.profile == "relay"
    assert manifest.base_url == "https://relay.example/v1"
    assert manifest.output == tmp_path / "out" / "results.csv"
    assert manifest.folder == tmp_path


def test_yaml_source_xlsx_with_sheet(tmp_path: Path) -> None:
    save_workbook(tmp_path / "book.xlsx", [["prompt"], ["from book"]], title="Plan")
    (tmp_path / "m.yaml").write_text("source: book.xlsx\nsheet: Plan\n")
    assert as_table(load_manifest(tmp_path / "m.yaml")) == [
        ("book.xlsx", 2, {"prompt": "from book"})
    ]


def test_yaml_problems_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "colums: {a: b}\n"
        "defaults: [1, 2]\n"
        "rows:\n"
        "  - prompt: ok\n"
        "  - just text\n"
        "  - prompt: x\n"
        "    tags: [a, b]\n"
        "  - prompt: y\n"
        "    Prompt: z\n"
    )
    assert problems_of(path) == [
        "m.yaml:1: unknown key 'colums'; expected one of base_url, columns, defaults, delimiter, "
        "encoding, header_row, image_fit, matrix, max_cost, output, pad_color, passthrough, "
        "profile, prompt_template, rows, sheet, source, takes",
        "m.yaml:2: defaults: must be a mapping of column: value",
        "m.yaml:5: a row must be a mapping of column: value",
        "m.yaml:7: the value of 'tags' must be a single value, not a list",
        "m.yaml:9: a row gives column 'prompt' twice",
    ]


def test_yaml_python_tag_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("- prompt: !!python/object/apply:os.system ['echo hi']\n")
    [problem] = problems_of(path)
    assert problem.startswith(
        "m.yaml:1: not allowed in a manifest: could not determine a constructor"
    )


def test_yaml_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
        for i in range(8)
    ]
    path = tmp_path / "m.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert problems_of(path) == [
        "m.yaml:2: YAML aliases (*name) are not supported; put shared values under defaults:"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "m.yaml: the file is empty"),
        ("# only a comment\n", "m.yaml: the file is empty"),
        ("rows: [a: 1\n", "m.yaml:2: not valid YAML: expected ',' or ']', but got '<stream end>'"),
        ("just a string\n", "m.yaml:1: expected a list of rows or a mapping with rows:"),
        (
            "profile: openai\n",
            "m.yaml:1: expected rows: (a list of rows) or source: (a CSV or .xlsx file)",
        ),
        ("source: missing.csv\n", "m.yaml:1: source: file not found: missing.csv"),
        (
            "source: other.yaml\n",
            "m.yaml:1: source: must be a .csv, .tsv, .txt, .xlsx or .ods file",
        ),
        (
            "passthrough: notes\nrows: [{prompt: p}]\n",
            "m.yaml:1: passthrough: must be a list of column names",
        ),
    ],
)
def test_yaml_file_problems(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "m.yaml").write_text(text)
    assert problems_of(tmp_path / "m.yaml") == [expected]


def test_passthrough_and_column_maps_are_the_teams_own_columns(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "passthrough: [Modle, ' Sceonds ']\ncolumns: {Promt: prompt, Tags: tagz}\n"
        "rows: [{Promt: p, modle: x, tags: y}]\n"
    )
    manifest = load_manifest(tmp_path / "m.yaml")
    assert manifest.own_columns == {"modle", "sceonds", "prompt", "tagz"}
    assert manifest.rows[0].values == {"prompt": "p", "modle": "x", "tagz": "y"}


def test_yaml_source_problems_keep_the_source_name(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text('prompt\n"open\n')
    (tmp_path / "m.yaml").write_text("source: s.csv\n")
    assert problems_of(tmp_path / "m.yaml") == [
        "s.csv:2: unbalanced quotes: a quoted cell starting in this row is never closed"
    ]


def test_yaml_impossible_date(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("- prompt: a\n  shoot: 2025-13-45\n")
    assert problems_of(tmp_path / "m.yaml") == [
        "m.yaml:2: not a valid value: month must be in 1..12"
    ]


def test_yaml_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("[" * 5000 + "]" * 5000 + "\n")
    assert problems_of(tmp_path / "m.yaml") == ["m.yaml: not valid YAML: nested too deeply"]


def test_blank_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["", ""], ["a", "b"], ["1", "2"]])
    manifest = load_manifest(path)
    assert as_table(manifest) == [("m.csv", 3, {"a": "1", "b": "2"})]
    assert manifest.notes == ("m.csv: skipped 1 row above the header (row 2)",)


def test_a_sheet_of_blank_rows_has_no_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["", ""], [" ", ""]])
    assert problems_of(path) == ["m.csv: every row is empty: no header row"]


def test_a_bad_byte_below_a_title_is_named_by_the_header(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"Spring brief\r\nid,prompt\r\na,fine\r\nb,cr\xe8me\r\n")
    [problem] = problems_of(path)
    assert problem.startswith("m.csv:4: prompt: byte 0xE8 is not UTF-8")


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("id;prompt\r\na;one, two\r\n", {"id": "a", "prompt": "one, two"}),
        ('id,prompt\r\na,"one; two"\r\n', {"id": "a", "prompt": "one; two"}),
        ("id\tprompt\r\na\tone, two; three\r\n", {"id": "a", "prompt": "one, two; three"}),
        ('Brief;;\r\n;;\r\nid;prompt;x\r\na;"x;y";\r\n', {"id": "a", "prompt": "x;y"}),
    ],
)
def test_the_delimiter_is_the_one_that_reads_the_header(
    tmp_path: Path, text: str, cells: dict[str, str]
) -> None:
    (tmp_path / "m.csv").write_text(text, encoding="utf-8", newline="")
    [row] = load_manifest(tmp_path / "m.csv").rows
    assert row.values == cells
