"""Fitting reference images to the video size, because the API rejects any other size.

``cover`` crops to fill, ``contain`` pads with a colour, ``stretch`` resizes, ``none``
keeps the validation error. EXIF orientation is honoured first (a phone's portrait photo
is stored sideways). Fitted images are written once into a cache folder, named by the
source's content and the fit, and never over the user's own files.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageColor, ImageOps

FIT_MODES = ("none", "cover", "contain", "stretch")
SAVE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
CACHE_FOLDER = ".batchgen-cache/fitted"


class FitError(Exception):
    """The image cannot be fitted as asked (a bad mode or colour, an undecodable file)."""


@dataclass(frozen=True)
class Fit:
    """How to fit: the mode, the target size in pixels, and the padding colour for contain."""

    mode: str
    width: int
    height: int
    pad_color: str = "black"

    def describe(self) -> str:
        extra = f" padded with {self.pad_color}" if self.mode == "contain" else ""
        return f"{self.mode} to {self.width}x{self.height}{extra}"


def check_fit(mode: str, pad_color: str) -> None:
    """Raise :class:`FitError` for an unknown mode or colour, naming what is allowed."""
    if mode not in FIT_MODES:
        raise FitError(f"image_fit {mode!r} is not one of {', '.join(FIT_MODES)}")
    try:
        ImageColor.getrgb(pad_color)
    except ValueError:
        raise FitError(
            f"pad_color {pad_color!r} is not a colour (try black, white, #203040)"
        ) from None


def fitted_path(source_sha256: str, fit: Fit, cache_dir: Path, image_format: str) -> Path:
    """Where the fitted copy of a source with this content lives in the cache."""
    recipe = f"{source_sha256}:{fit.mode}:{fit.width}x{fit.height}:{fit.pad_color}"
    name = hashlib.sha256(recipe.encode()).hexdigest()[:24]
    return cache_dir / f"{name}{SAVE_FORMATS.get(image_format, '.png')}"


def fit_image(source: Path, source_sha256: str, fit: Fit, cache_dir: Path) -> Path:
    """The path of ``source`` fitted to ``fit``, made once and then reused from the cache."""
    try:
        with Image.open(source) as original:
            image_format = original.format if original.format in SAVE_FORMATS else "PNG"
            target = fitted_path(source_sha256, fit, cache_dir, image_format)
            if target.exists():
                return target
            upright = ImageOps.exif_transpose(original)
            result = _resize(upright, fit)
    except (OSError, ValueError) as exc:
        raise FitError(f"cannot fit the image: {exc}") from None
    _save_atomically(result, target, image_format)
    return target


def _resize(image: Image.Image, fit: Fit) -> Image.Image:
    size = (fit.width, fit.height)
    if fit.mode == "cover":
        return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)
    if fit.mode == "contain":
        color = ImageColor.getrgb(fit.pad_color)
        return ImageOps.pad(image.convert("RGB"), size, Image.Resampling.LANCZOS, color=color)
    return image.resize(size, Image.Resampling.LANCZOS)


def _save_atomically(image: Image.Image, target: Path, image_format: str) -> None:
    """Write via a temporary file and rename, so a half-written image is never reused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if image_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=target.suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            image.save(out, image_format, **({"quality": 95} if image_format != "PNG" else {}))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
