"""An image path that differs only by case from a file that exists.

The sheet worked on the Mac or Windows machine it came from; on Linux the row is refused,
naming the file that exists, and nothing is sent (a guess could pay for the wrong image).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchgen.mock import RunningMock
from tests.helpers import FAST, Invoke, make_image, write_csv


@pytest.fixture(autouse=True)
def _case_sensitive_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = tmp_path / "probe"
    probe.touch()
    if (tmp_path / "PROBE").exists():
        pytest.skip("this file system ignores case, as the sheet's own machine did")
    probe.unlink()
    monkeypatch.chdir(tmp_path)


def manifest(folder: Path, *images: str) -> Path:
    rows = [["prompt", "image", "size"]]
    rows += [[f"shot {n}", image, "720x1280"] for n, image in enumerate(images, start=1)]
    return write_csv(folder / "m.csv", rows)


def test_validate_names_the_file_that_exists(tmp_path: Path, invoke: Invoke) -> None:
    make_image(tmp_path / "images" / "fuji-portrait.jpg", fmt="JPEG")
    manifest(tmp_path, "Images/Fuji-Portrait.JPG", "images/fuji-portrait.jpg")
    result = invoke("validate", "m.csv")
    assert result.exit_code == 2
    assert (
        "m.csv:2: image: Images/Fuji-Portrait.JPG: file not found; "
        "did you mean images/fuji-portrait.jpg?"
    ) in result.output
    assert "m.csv:3" not in result.output  # the path as it is on disk is fine
    assert "Traceback" not in result.output


@pytest.mark.timeout(60)
def test_run_sends_nothing(tmp_path: Path, invoke: Invoke, mock_api: RunningMock) -> None:
    make_image(tmp_path / "images" / "fuji-portrait.jpg", fmt="JPEG")
    manifest(tmp_path, "images/fuji-portrait.jpg", "images\\FUJI-portrait.jpg")
    result = invoke("run", "m.csv", "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 2
    assert "did you mean images/fuji-portrait.jpg?" in result.output
    assert mock_api.state.create_requests == 0
    assert not (tmp_path / "m.results.csv").exists()


@pytest.mark.timeout(60)
def test_run_mock_refuses_it(tmp_path: Path, invoke: Invoke) -> None:
    make_image(tmp_path / "Refs" / "Fuji.png")
    manifest(tmp_path, "refs/fuji.png")
    result = invoke("run", "m.csv", "--mock", *FAST)
    assert result.exit_code == 2
    assert "m.csv:2: image: refs/fuji.png: file not found; did you mean Refs/Fuji.png?" in (
        result.output
    )
    assert not (tmp_path / "m.results.csv").exists()


def test_every_file_that_differs_only_by_case_is_named(tmp_path: Path, invoke: Invoke) -> None:
    """Linux allows both ``cat.png`` and ``CAT.png``: the user picks, batchgen does not."""
    make_image(tmp_path / "cat.png")
    make_image(tmp_path / "CAT.png")
    manifest(tmp_path, "Cat.png")
    result = invoke("validate", "m.csv")
    assert "Cat.png: file not found; did you mean CAT.png or cat.png?" in result.output


def test_no_hint_without_a_match(tmp_path: Path, invoke: Invoke) -> None:
    make_image(tmp_path / "images" / "fuji.png")
    manifest(tmp_path, "Images/other.png")
    result = invoke("validate", "m.csv")
    assert result.exit_code == 2
    assert "m.csv:2: image: Images/other.png: file not found" in result.output
    assert "did you mean" not in result.output


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_match_outside_the_folder_is_not_suggested(tmp_path: Path, invoke: Invoke) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    make_image(tmp_path / "elsewhere" / "secret.png")
    (batch / "Linked").symlink_to(tmp_path / "elsewhere")
    manifest(batch, "linked/secret.png")
    result = invoke("validate", batch / "m.csv")
    assert result.exit_code == 2
    assert "linked/secret.png: file not found" in result.output
    assert "did you mean" not in result.output
