"""The rule that tells a misspelt column from a column of the team's own, word by word.

Every example of the issue is here, in both directions: the misspellings and synonyms are
taken for the column they mean; ``tags``, ``time``, ``mode`` and a team's usual columns
are not.
"""

from __future__ import annotations

import pytest

from batchgen.columns import KNOWN_EXTRA_FIELDS
from batchgen.jobs import CORE_FIELDS
from batchgen.validate.near_miss import allowed_distance, closest, distance, fold, probable_column
from batchgen.validate.rows import ROW_OPTIONS

KNOWN = ("id", "image", *CORE_FIELDS, *KNOWN_EXTRA_FIELDS, *ROW_OPTIONS)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("sceonds", "seconds"),  # a transposition: 1 edit
        ("modle", "model"),  # 5 letters, a transposition
        ("promt", "prompt"),
        ("secnods", "seconds"),
        ("sizes", "size"),
        ("image fit", "image_fit"),  # folding: case, spaces, _ and - do not matter
        ("Remix-Of", "remix_of"),
        ("padcolour", "pad_color"),
        ("duration", "seconds"),
        ("length", "seconds"),
        ("resolution", "size"),
        ("dimensions", "size"),
        ("image_path", "image"),
        ("reference", "image"),
        ("text", "prompt"),
        ("description", "prompt"),
    ],
)
def test_misspellings_and_synonyms_mean_the_column(name: str, meant: str) -> None:
    assert probable_column(name, KNOWN) == meant


@pytest.mark.parametrize(
    "name",
    [
        "tags",
        "time",
        "mode",  # 1 edit from model, but 4 letters: a word of its own
        "take",  # the results' own column for takes
        "campaign",
        "owner",
        "notes",
        "shot",
        "scene",
        "title",
        "model_notes",
    ],
)
def test_a_teams_own_columns_are_not_near_misses(name: str) -> None:
    assert probable_column(name, KNOWN) is None


@pytest.mark.parametrize("name", KNOWN)
def test_a_known_column_is_not_a_miss_of_another(name: str) -> None:
    assert probable_column(name, KNOWN) is None


def test_a_synonym_only_counts_for_a_column_that_is_known() -> None:
    assert probable_column("duration", ("prompt",)) is None


def test_the_distance_counts_a_swap_of_neighbours_as_one_edit() -> None:
    assert distance("sceonds", "seconds") == 1
    assert distance("modle", "model") == 1
    assert distance("mode", "model") == 1
    assert distance("tags", "takes") == 2
    assert distance("time", "size") == 2
    assert distance("", "abc") == 3 and distance("abc", "") == 3
    assert distance("kitten", "sitting") == 3


def test_the_allowed_distance_grows_with_the_names_length() -> None:
    assert [allowed_distance(n) for n in range(1, 9)] == [0, 0, 0, 0, 1, 2, 2, 2]


def test_folding_and_ties() -> None:
    assert fold(" Image_Fit ") == fold("image-fit") == "imagefit"
    assert closest("sizess", ["size", "sizes"]) == "sizes"  # the nearest wins
    assert closest("promtp", ["prompt", "promts"]) == "prompt"  # then the first given
    assert closest("cat-1", ["cat_1"]) == "cat_1"
