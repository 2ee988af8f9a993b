"""Fitting reference images: cover, contain, stretch, EXIF orientation, the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from batchgen.manifest.fit import Fit, FitError, check_fit, fit_image


def photo(path: Path, size: tuple[int, int], fmt: str = "JPEG", orientation: int = 1) -> Path:
    """A real photo: left half red, right half blue, optionally with an EXIF orientation."""
    image = Image.new("RGB", size, (220, 30, 30))
    image.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, fmt, exif=exif.tobytes())
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mode", ["cover", "contain", "stretch"])
@pytest.mark.parametrize("size", [(1920, 1080), (640, 480), (720, 1280), (3000, 4000)])
def test_every_mode_gives_exactly_the_requested_size(
    tmp_path: Path, mode: str, size: tuple[int, int]
) -> None:
    source = photo(tmp_path / "in.jpg", size)
    out = fit_image(source, sha(source), Fit(mode, 720, 1280), tmp_path / "cache")
    with Image.open(out) as fitted:
        assert fitted.size == (720, 1280)
        assert fitted.format == "JPEG"  # the original format is kept


def test_contain_pads_with_the_colour_and_cover_fills(tmp_path: Path) -> None:
    source = photo(tmp_path / "wide.png", (1280, 720), "PNG")
    padded = fit_image(source, sha(source), Fit("contain", 720, 1280, "#00ff00"), tmp_path / "c")
    filled = fit_image(source, sha(source), Fit("cover", 720, 1280), tmp_path / "c")
    with Image.open(padded) as image:
        assert image.getpixel((360, 5)) == (0, 255, 0)  # top band is padding
    with Image.open(filled) as image:
        assert image.getpixel((360, 5)) != (0, 255, 0)


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    # stored 1280x720 but tagged "rotate 90": a portrait photo as a phone saves it
    source = photo(tmp_path / "phone.jpg", (1280, 720), orientation=6)
    out = fit_image(source, sha(source), Fit("stretch", 720, 1280), tmp_path / "cache")
    with Image.open(out) as image:
        rgb = image.convert("RGB")
        top, bottom = rgb.getpixel((360, 50)), rgb.getpixel((360, 1230))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > top[2] or bottom[0] > bottom[2]  # halves are now top/bottom, not left/right
    assert (top[0] > top[2]) != (bottom[0] > bottom[2])


def test_fitted_once_into_the_cache_never_over_the_users_file(tmp_path: Path) -> None:
    source = photo(tmp_path / "in.jpg", (640, 480))
    before = source.read_bytes()
    first = fit_image(source, sha(source), Fit("cover", 720, 1280), tmp_path / "cache")
    mtime = first.stat().st_mtime_ns
    again = fit_image(source, sha(source), Fit("cover", 720, 1280), tmp_path / "cache")
    assert again == first and first.stat().st_mtime_ns == mtime
    assert source.read_bytes() == before
    other = fit_image(source, sha(source), Fit("contain", 720, 1280), tmp_path / "cache")
    assert other != first


def test_bad_mode_and_colour_are_named(tmp_path: Path) -> None:
    with pytest.raises(FitError, match="cover, contain"):
        check_fit("squash", "black")
    with pytest.raises(FitError, match="not a colour"):
        check_fit("contain", "blurple")
