"""File names for downloads: templates, defaults, safety on every OS, uniqueness."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.errors import UsageError
from batchgen.follow.naming import (
    MAX_BYTES,
    MAX_CHARS,
    FileNamer,
    check_template,
    default_stem,
    render_stem,
    safe_stem,
    slug,
)

HASH_KEY = "h0123456789abcdef-1"
COLUMNS = ("key", "row", "prompt", "campaign", "file", "thumbnail", "spritesheet")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("c-01", "c-01"),
        ("a/b\\c", "a-b-c"),
        ('what? <now>: "yes" | no*', "what- -now-- -yes- - no-"),
        ("../../etc/passwd", "-..-etc-passwd".lstrip(".-")),
        ("tab\there\nnew\x00line\x7f", "tab here newline"),
        ("zero\u200bwidth", "zerowidth"),
        ("ends with dots...", "ends with dots"),
        ("  spaced  out  ", "spaced out"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("", "video"),
        ("///", "video"),
        ("CON", "CON_"),
        ("nul", "nul_"),
        ("com1", "com1_"),
        ("LPT9.draft", "LPT9_.draft"),
        ("aux .x", "aux _.x"),
        ("CONSOLE", "CONSOLE"),
        ("café", "café"),
        ("cafe\u0301", "café"),  # NFC: one form on every OS (macOS stores NFD)
        ("雨の日-01", "雨の日-01"),
    ],
)
def test_safe_stem(raw: str, expected: str) -> None:
    assert safe_stem(raw) == expected


def test_safe_stem_bounds_characters_and_bytes() -> None:
    assert len(safe_stem("x" * 500)) == MAX_CHARS
    wide = safe_stem("雨" * 500)  # 3 bytes each in UTF-8
    assert len(wide.encode("utf-8")) <= MAX_BYTES and wide == "雨" * (MAX_BYTES // 3)
    assert safe_stem("a" * (MAX_CHARS - 1) + " .b") == "a" * (MAX_CHARS - 1)  # no trailing dot


def test_default_stem_is_the_id_else_row_and_slug() -> None:
    assert default_stem("c-01", {"row": "2", "prompt": "x"}) == "c-01"
    record = {"row": "12", "prompt": "A calico cat, playing with yarn!"}
    assert default_stem(HASH_KEY, record) == "row-012-a-calico-cat-playing"
    assert slug("  Über  die   Brücke ") == "über-die-brücke"


def test_template_fields_and_fallback() -> None:
    record = {"row": "3", "prompt": "Sunset hills", "campaign": "rainy/day"}
    assert render_stem("{campaign}-{key}", "c-03", record) == "rainy-day-c-03"
    assert render_stem("{id}", "c-03", record) == "c-03"
    assert render_stem("{row:0>4}-{slug}", "c-03", record) == "0003-sunset-hills"
    # a blank result falls back to the default name rather than "video"
    assert render_stem("{id}", HASH_KEY, record) == "row-003-sunset-hills"
    assert render_stem("{campaign}", "c-04", {"campaign": ""}) == "c-04"


@pytest.mark.parametrize(
    "template",
    ["{nope}", "{prompt.__class__}", "{prompt[0]}", "{0}", "{}", "{key!r}", "{row:d}", "{oops"],
)
def test_bad_templates_are_usage_errors(template: str) -> None:
    with pytest.raises(UsageError, match="name template"):
        check_template(template, COLUMNS)


def test_namer_makes_clashing_rows_unique_case_insensitively(tmp_path: Path) -> None:
    namer = FileNamer(tmp_path, "{campaign}", {}, COLUMNS)
    stems = [namer.stem_for(k, {"campaign": c}) for k, c in [("a", "Promo"), ("b", "promo")]]
    stems.append(namer.stem_for("c", {"campaign": "PROMO"}))
    assert stems == ["Promo", "promo-2", "PROMO-3"]
    assert namer.stem_for("a", {"campaign": "Promo"}) == "Promo"  # a row keeps its name
    assert namer.path("promo-2", "thumbnail") == tmp_path / "promo-2.webp"
    assert namer.path("x", "spritesheet").suffix == ".jpg"


def test_namer_keeps_suffixed_names_within_bounds(tmp_path: Path) -> None:
    namer = FileNamer(tmp_path, "{campaign}", {}, COLUMNS)
    long = "y" * 300
    first, second = (namer.stem_for(k, {"campaign": long}) for k in ("a", "b"))
    assert len(first) == MAX_CHARS and len(second) == MAX_CHARS and second.endswith("-2")


def test_namer_never_takes_a_name_the_folder_or_ledger_already_has(tmp_path: Path) -> None:
    (tmp_path / "c-01.mp4").write_bytes(b"someone else's")
    (tmp_path / "c-02.mp4.part").write_bytes(b"our own leftover")  # fair game
    states = {"old": {"file": str(tmp_path / "c-03.mp4")}, "c-04": {"file": "elsewhere/X.mp4"}}
    namer = FileNamer(tmp_path, None, states, COLUMNS)
    assert namer.stem_for("c-01", {}) == "c-01-2"
    assert namer.stem_for("c-02", {}) == "c-02"
    assert namer.stem_for("c-03", {}) == "c-03-2"
    assert namer.stem_for("c-04", states["c-04"]) == "X"  # the recorded name is kept
