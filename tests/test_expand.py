"""Templates, matrices and takes: one row standing for many videos."""

from __future__ import annotations

import pytest

from batchgen.manifest.expand import Expansion, ExpansionError, expand_row, fill_template


def test_matrix_is_the_cross_product_with_values_carried() -> None:
    expansion = Expansion(matrix={"style": ["anime", "comic"], "seconds": ["4", "8"]})
    variants = expand_row({"id": "a", "prompt": "p", "owner": "mia"}, expansion)
    assert [(v.values["style"], v.values["seconds"]) for v in variants] == [
        ("anime", "4"),
        ("anime", "8"),
        ("comic", "4"),
        ("comic", "8"),
    ]
    assert len({v.suffix for v in variants}) == 4
    assert variants[0].suffix == "[style=anime,seconds=4]"
    assert all(v.values["owner"] == "mia" for v in variants)
    assert expansion.count() == 4


def test_takes_from_the_manifest_or_the_row() -> None:
    variants = expand_row({"prompt": "p"}, Expansion(takes=3))
    assert [v.values["take"] for v in variants] == ["1", "2", "3"]
    assert [v.suffix for v in variants] == ["[take1]", "[take2]", "[take3]"]
    row_override = expand_row({"prompt": "p", "takes": "2"}, Expansion())
    assert [v.suffix for v in row_override] == ["[take1]", "[take2]"]
    assert "takes" not in row_override[0].values


@pytest.mark.parametrize("bad", ["0", "-1", "2.5", "many", "101"])
def test_bad_takes_name_the_column(bad: str) -> None:
    with pytest.raises(ExpansionError) as caught:
        expand_row({"prompt": "p", "takes": bad}, Expansion())
    assert caught.value.column == "takes"


def test_a_plain_row_expands_to_itself() -> None:
    [variant] = expand_row({"prompt": "p"}, Expansion())
    assert variant.suffix == "" and dict(variant.values) == {"prompt": "p"}


def test_template_fills_columns_including_matrix_values() -> None:
    expansion = Expansion(prompt_template="{subject} in {Style} style", matrix={"style": ["anime"]})
    [variant] = expand_row({"subject": "A cat"}, expansion)
    assert variant.values["prompt"] == "A cat in anime style"


def test_template_with_a_missing_column_names_it() -> None:
    with pytest.raises(ExpansionError, match="'mood'") as caught:
        fill_template("{subject}, {mood}", {"subject": "A cat"})
    assert caught.value.column == "prompt_template"


@pytest.mark.parametrize("template", ["{a.__class__}", "{a[0]}", "{a!r}", "{a:>10}", "{"])
def test_template_placeholders_are_plain_names_only(template: str) -> None:
    with pytest.raises(ExpansionError):
        fill_template(template, {"a": "x"})
