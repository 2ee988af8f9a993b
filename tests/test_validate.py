"""Validating manifest rows against provider profiles, as the user reads the results."""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from batchgen.errors import ManifestError
from batchgen.manifest import Manifest, ManifestRow, images, load_manifest
from batchgen.manifest.images import ImageInfo
from batchgen.profile import Profile
from batchgen.profile_files import load_profile
from batchgen.validate import rows as validate
from batchgen.validate.rows import FIT_HINT, Validation, validate_manifest

OPENAI = load_profile("openai")
RELAY = load_profile("relay")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write_manifest(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


def check(tmp_path: Path, rows: Sequence[Sequence[str]], profile: Profile = OPENAI) -> Validation:
    return validate_manifest(load_manifest(write_manifest(tmp_path / "m.csv", rows)), profile)


def problems(validation: Validation) -> list[str]:
    return [str(problem) for problem in validation.problems]


def make_image(path: Path, size: tuple[int, int] = (720, 1280)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (30, 60, 90)).save(path)
    return path


def test_valid_rows_become_jobs(tmp_path: Path) -> None:
    make_image(tmp_path / "img" / "cat.png")
    validation = check(
        tmp_path,
        [
            ["campaign", "Prompt", "image", "seconds", "Size", "model", "owner"],
            ["spring", "a cat\non a roof", "img/cat.png", "8.0", "720X1280", "Sora-2", "ana"],
            ["", "a dog", "", "", "", "", "bo"],
        ],
    )
    assert validation.ok and problems(validation) == [] and validation.invalid == ()
    first, second = validation.jobs
    assert first.row == 2
    assert dict(first.fields) == {
        "model": "sora-2",
        "prompt": "a cat\non a roof",
        "seconds": "8",
        "size": "720x1280",
    }
    assert list(first.fields) == ["model", "prompt", "seconds", "size"]
    assert first.image is not None
    assert (first.image.content_type, first.image.width, first.image.height) == (
        "image/png",
        720,
        1280,
    )
    assert first.image.path == (tmp_path / "img" / "cat.png").resolve()
    assert first.image_text == "img/cat.png"
    assert list(first.passthrough.items()) == [("campaign", "spring"), ("owner", "ana")]
    # Profile defaults fill what the row leaves blank.
    assert dict(second.fields) == {
        "model": "sora-2",
        "prompt": "a dog",
        "seconds": "4",
        "size": "720x1280",
    }
    assert second.image is None and second.image_text == ""
    assert list(second.passthrough.items()) == [("campaign", ""), ("owner", "bo")]


def test_every_problem_of_every_row(tmp_path: Path) -> None:
    validation = check(
        tmp_path,
        [
            ["id", "prompt", "model", "seconds", "size", "style"],
            ["a", "", "sora-3", "10", "big", ""],
            ["b", "fine", "sora-2", "4", "1024x1792", "comic"],
            ["c", "fine", "sora-2-pro", "12", "1024x1792", ""],
        ],
    )
    assert problems(validation) == [
        "m.csv:2: prompt: missing: every row needs a prompt",
        "m.csv:2: model: unknown model 'sora-3'; the openai profile allows sora-2, "
        "sora-2-2025-10-06, sora-2-2025-12-08, sora-2-pro, sora-2-pro-2025-10-06",
        "m.csv:2: seconds: '10' is not allowed; use one of 4, 8, 12",
        "m.csv:2: size: 'big' is not WIDTHxHEIGHT, e.g. 720x1280",
        "m.csv:3: size: 1024x1792 is not available for sora-2; it allows 720x1280, 1280x720",
        "m.csv:3: style: the openai profile does not take 'style'",
    ]
    assert [job.key for job in validation.jobs] == ["c"]
    assert [(bad.key, bad.row) for bad in validation.invalid] == [("a", 2), ("b", 3)]
    assert validation.invalid[1].messages == (
        "size: 1024x1792 is not available for sora-2; it allows 720x1280, 1280x720",
        "style: the openai profile does not take 'style'",
    )
    assert validation.invalid[1].values["style"] == "comic"
    assert not validation.ok


def test_prompt_too_long(tmp_path: Path) -> None:
    short = dataclasses.replace(OPENAI, max_prompt_chars=10)
    validation = check(tmp_path, [["prompt"], ["x" * 1234]], short)
    assert problems(validation) == [
        "m.csv:2: prompt: is 1,234 characters; the openai profile allows at most 10"
    ]


def test_no_prompt_column_is_one_message_naming_the_likely_one(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as raised:
        check(tmp_path, [["id", "promt", "owner"], ["a", "a cat on a roof", "mia"], ["b", "", ""]])
    assert [str(p) for p in raised.value.problems] == [
        "m.csv:1: prompt: no prompt column: the columns are id, promt, owner; 'promt' is "
        "probably it: rename it prompt (a YAML manifest can map it: columns: {promt: prompt})"
    ]


def test_without_a_near_miss_the_longest_text_is_the_likely_prompt(tmp_path: Path) -> None:
    rows = [["Beschreibung", "owner"], ["Eine Katze auf dem Dach", "mia"], ["Ein Hund", "bo"]]
    with pytest.raises(ManifestError, match="'beschreibung' is probably it"):
        check(tmp_path, rows)
    with pytest.raises(ManifestError, match=r"; name the column of prompts prompt$"):
        check(tmp_path, [["id"], ["a"]])


def test_relay_extra_fields(tmp_path: Path) -> None:
    validation = check(
        tmp_path,
        [
            ["prompt", "style", "watermark", "private", "seconds"],
            ["a", "anime", "yes", "0", "15"],
            ["b", "", "", "", "10"],
            ["c", "cartoon", "maybe", "", "4"],
        ],
        RELAY,
    )
    assert problems(validation) == [
        "m.csv:4: style: 'cartoon' is not allowed; use thanksgiving, comic, news, selfie, "
        "nostalgic, anime",
        "m.csv:4: watermark: 'maybe' is not allowed; use true or false",
    ]
    first, second = validation.jobs
    assert list(first.fields.items()) == [
        ("model", "sora-2"),
        ("prompt", "a"),
        ("seconds", "15"),
        ("size", "720x1280"),
        ("style", "anime"),
        ("watermark", "true"),
        ("private", "false"),
    ]
    assert "style" not in second.fields and second.passthrough == {}


def test_image_problems(tmp_path: Path) -> None:
    make_image(tmp_path / "good.png")
    make_image(tmp_path / "wide.jpg", (1024, 768))
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "empty.webp").write_bytes(b"")
    (tmp_path.parent / "outside.png").write_bytes(b"x")
    validation = check(
        tmp_path,
        [
            ["prompt", "image", "size"],
            ["ok", "good.png", ""],
            ["wide", "wide.jpg", "720x1280"],
            ["text", "text.jpg", ""],
            ["empty", "empty.webp", ""],
            ["gone", "missing.png", ""],
            ["escape", "../outside.png", ""],
            ["other size", "good.png", "1280x720"],
        ],
    )
    assert problems(validation) == [
        "m.csv:3: image: image is 1024x768 but size is 720x1280" + FIT_HINT,
        "m.csv:4: image: text.jpg: is not an image: its content is not JPEG, PNG or WEBP",
        "m.csv:5: image: empty.webp: the file is empty (0 bytes)",
        "m.csv:6: image: missing.png: file not found",
        f"m.csv:7: image: ../outside.png: is outside the image folder {tmp_path}; "
        "images must be inside it",
        "m.csv:8: image: image is 720x1280 but size is 1280x720" + FIT_HINT,
    ]
    assert [job.row for job in validation.jobs] == [2]


def test_image_root(tmp_path: Path) -> None:
    make_image(tmp_path / "assets" / "a.png")
    (tmp_path / "sheets").mkdir()
    manifest = load_manifest(
        write_manifest(tmp_path / "sheets" / "m.csv", [["prompt", "image"], ["a", "a.png"]])
    )
    assert problems(validate_manifest(manifest, OPENAI)) == [
        "sheets/m.csv:2: image: a.png: file not found"
    ]
    validation = validate_manifest(manifest, OPENAI, image_root=tmp_path / "assets")
    assert validation.ok and validation.jobs[0].image is not None


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    validation = check(tmp_path, [["id", "prompt"], ["x1", "a"], ["x2", "b"], ["x1", "c"]])
    assert problems(validation) == [
        "m.csv:2: id: duplicate id 'x1': used by rows 2, 4",
        "m.csv:4: id: duplicate id 'x1': used by rows 2, 4",
    ]
    assert [job.key for job in validation.jobs] == ["x2"]


def test_keys_are_stable_and_follow_content(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png")
    rows = [
        ["prompt", "image", "note"],
        ["same", "a.png", "x"],
        ["same", "a.png", "y"],
        ["other", "", ""],
    ]
    first = [job.key for job in check(tmp_path, rows).jobs]
    again = [job.key for job in check(tmp_path, rows).jobs]
    assert first == again
    # Two identical rows are two videos (passthrough columns are not sent, so they match).
    assert first[0] != first[1] and first[0].endswith("-1") and first[1].endswith("-2")
    assert first[0][:-2] == first[1][:-2]

    edited = [rows[0], ["same", "a.png", "x"], ["same!", "a.png", "y"], rows[3]]
    keys = [job.key for job in check(tmp_path, edited).jobs]
    assert keys[0] == first[0] and keys[1] != first[1] and keys[2] == first[2]

    make_image(tmp_path / "a.png", (720, 1280))  # same picture again: same bytes, same key
    assert [job.key for job in check(tmp_path, rows).jobs] == first
    Image.new("RGB", (720, 1280), (1, 2, 3)).save(tmp_path / "a.png")  # new picture: new key
    assert check(tmp_path, rows).jobs[0].key != first[0]


def test_invalid_rows_get_keys_too(tmp_path: Path) -> None:
    validation = check(tmp_path, [["prompt", "seconds"], ["a", "7"], ["a", "7"]])
    keys = [bad.key for bad in validation.invalid]
    assert len(set(keys)) == 2 and all(key.startswith("h") for key in keys)


def test_each_image_is_inspected_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_image(tmp_path / "a.png")
    calls: list[Path] = []
    real = images.inspect_image

    def counting(path: Path) -> ImageInfo:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(validate, "inspect_image", counting)
    validation = check(
        tmp_path, [["prompt", "image"], ["1", "a.png"], ["2", "./a.png"], ["3", "a.png"]]
    )
    assert validation.ok and len(validation.jobs) == 3
    assert calls == [(tmp_path / "a.png").resolve()]


def test_rows_from_yaml_keep_their_own_file(tmp_path: Path) -> None:
    write_manifest(tmp_path / "s.csv", [["prompt", "id"], ["a", "k"]])
    (tmp_path / "m.yaml").write_text("source: s.csv\nrows:\n  - {prompt: b, id: k}\n")
    validation = validate_manifest(load_manifest(tmp_path / "m.yaml"), OPENAI)
    assert problems(validation) == [
        "s.csv:2: id: duplicate id 'k': used by rows s.csv:2, m.yaml:3",
        "m.yaml:3: id: duplicate id 'k': used by rows s.csv:2, m.yaml:3",
    ]


def test_hundred_thousand_rows_with_one_image(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png")
    rows = tuple(
        ManifestRow(n + 2, "m.csv", {"prompt": f"shot {n % 700}", "image": "a.png", "n": str(n)})
        for n in range(100_000)
    )
    manifest = Manifest(tmp_path / "m.csv", tmp_path, rows, ("prompt", "image", "n"))
    started = time.perf_counter()
    validation = validate_manifest(manifest, OPENAI)
    assert time.perf_counter() - started < 10
    assert validation.ok and len({job.key for job in validation.jobs}) == 100_000
