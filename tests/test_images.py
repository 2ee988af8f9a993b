"""Reference images: judged by content, and kept inside their folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from batchgen.manifest.images import ImageProblem, inspect_image, resolve_inside


def make_image(path: Path, size: tuple[int, int] = (720, 1280), fmt: str | None = None) -> Path:
    Image.new("RGB", size, (200, 80, 40)).save(path, format=fmt)
    return path


def problem_of(path: Path) -> str:
    with pytest.raises(ImageProblem) as caught:
        inspect_image(path)
    return caught.value.message


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("a.png", "image/png"), ("a.jpg", "image/jpeg"), ("a.webp", "image/webp")],
)
def test_supported_formats(tmp_path: Path, name: str, content_type: str) -> None:
    path = make_image(tmp_path / name)
    info = inspect_image(path)
    data = path.read_bytes()
    assert (info.content_type, info.width, info.height) == (content_type, 720, 1280)
    assert info.size_bytes == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    path = make_image(tmp_path / "really-a-png.jpg", fmt="PNG")
    assert inspect_image(path).content_type == "image/png"


def test_wrong_size_is_reported_as_is(tmp_path: Path) -> None:
    info = inspect_image(make_image(tmp_path / "a.png", (1024, 768)))
    assert (info.width, info.height) == (1024, 768)


def test_text_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_text("not an image\n")
    assert problem_of(tmp_path / "a.jpg") == "is not an image: its content is not JPEG, PNG or WEBP"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    assert problem_of(tmp_path / "a.png") == "the file is empty (0 bytes)"


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert problem_of(tmp_path / "nope.png") == "file not found"
    assert problem_of(tmp_path) == "is not a file"


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.webp"])
def test_truncated_image(tmp_path: Path, name: str) -> None:
    path = make_image(tmp_path / name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert problem_of(path).startswith("the image data is damaged or incomplete (")


def test_other_formats_are_named(tmp_path: Path) -> None:
    path = make_image(tmp_path / "a.gif", fmt="GIF")
    assert problem_of(path) == "is a GIF image; use JPEG, PNG or WEBP"


def test_resolve_relative_and_absolute_inside(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    make_image(tmp_path / "shots" / "a.png")
    assert resolve_inside(tmp_path, "shots/a.png") == (tmp_path / "shots" / "a.png").resolve()
    assert resolve_inside(tmp_path, "shots\\a.png") == (tmp_path / "shots" / "a.png").resolve()
    inside = str(tmp_path / "shots" / "a.png")
    assert resolve_inside(tmp_path, inside) == Path(inside).resolve()
    # A path that wanders out and back in is still inside.
    assert resolve_inside(tmp_path / "shots", "../shots/a.png").name == "a.png"


@pytest.mark.parametrize("text", ["../secret.png", "/etc/passwd", "shots/../../x.png"])
def test_resolve_refuses_paths_outside(tmp_path: Path, text: str) -> None:
    root = tmp_path / "root"
    (root / "shots").mkdir(parents=True)
    with pytest.raises(ImageProblem) as caught:
        resolve_inside(root, text)
    assert caught.value.message == f"is outside the image folder {root}; images must be inside it"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_escaping_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make_image(tmp_path / "outside.png")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    (root / "dir").symlink_to(tmp_path)
    for text in ("link.png", "dir/outside.png"):
        with pytest.raises(ImageProblem, match="is outside the image folder"):
            resolve_inside(root, text)
    # A link that stays inside is fine, and resolves to the real file.
    make_image(root / "real.png")
    (root / "alias.png").symlink_to(root / "real.png")
    assert resolve_inside(root, "alias.png") == (root / "real.png").resolve()


def test_empty_cell(tmp_path: Path) -> None:
    with pytest.raises(ImageProblem, match="the image path is empty"):
        resolve_inside(tmp_path, "  ")


def test_large_file_is_hashed_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_image(tmp_path / "a.png")
    with path.open("ab") as stream:  # bytes after IEND: still a valid PNG, and 3 MB long
        stream.write(b"\0" * 3_000_000)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    reads: list[int] = []
    real_open = Path.open

    def spy_open(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        stream = real_open(self, mode, *args, **kwargs)  # type: ignore[call-overload]
        if self == path and mode == "rb":
            real_read = stream.read

            def read(size: int = -1) -> bytes:
                reads.append(size)
                return real_read(size)  # type: ignore[no-any-return]

            stream.read = read
        return stream

    monkeypatch.setattr(Path, "open", spy_open)
    assert inspect_image(path).sha256 == expected
    assert reads and all(0 < size <= 1 << 20 for size in reads)
