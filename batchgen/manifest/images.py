"""Reference images: where a manifest's image cell points, and whether the file is usable.

The type comes from the bytes, never the file name: a text file named ``cat.jpg`` or a
half-copied PNG is caught here, before anything is paid for.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from batchgen.manifest.image_case import case_variants, did_you_mean

#: Pillow's format name -> the content type sent to the provider.
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageInfo:
    """What the provider is told about an image, read from its content."""

    content_type: str
    width: int
    height: int
    sha256: str
    size_bytes: int


class ImageProblem(Exception):
    """An image cell that cannot be used; ``message`` says why, without the file name."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def inspect_image(path: Path) -> ImageInfo:
    """Type, pixel size, SHA-256 and byte size of ``path``; raises :class:`ImageProblem`.

    Only JPEG, PNG and WEBP are accepted, judged by content. The file is hashed in chunks,
    so a large image is never held whole in memory by batchgen itself.
    """
    size_bytes = _size_bytes(path)
    content_type, width, height = _read_header(path)
    return ImageInfo(
        content_type=content_type,
        width=width,
        height=height,
        sha256=_sha256(path),
        size_bytes=size_bytes,
    )


def resolve_inside(root: Path, text: str) -> Path:
    """The real path of image cell ``text`` (relative to ``root``), which must stay inside ``root``.

    Symlinks are followed first, so a link pointing out of the folder is refused like a
    ``../`` path; an absolute path is fine when it lies inside ``root``. A missing file
    whose name differs only by case from one that exists is refused naming that file
    (see :mod:`batchgen.manifest.image_case` for why it is not accepted).
    """
    cell = text.strip()
    if not cell:
        raise ImageProblem("the image path is empty")
    if os.sep == "/":
        # Spreadsheets made on Windows write images\cat.jpg; a backslash in a real POSIX
        # file name is far rarer than that.
        cell = cell.replace("\\", "/")
    try:
        real_root = root.resolve()
        real = (root / cell).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python < 3.13
        raise ImageProblem(f"cannot resolve the path: {exc}") from None
    if not real.is_relative_to(real_root):
        raise ImageProblem(f"is outside the image folder {root}; images must be inside it")
    if not real.exists() and (variants := case_variants(root, real)):
        raise ImageProblem(did_you_mean(root, cell, variants))
    return real


def _size_bytes(path: Path) -> int:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ImageProblem("file not found") from None
    except OSError as exc:
        raise ImageProblem(f"cannot read the file: {exc.strerror}") from None
    if not path.is_file():
        raise ImageProblem("is not a file")
    if stat.st_size == 0:
        raise ImageProblem("the file is empty (0 bytes)")
    return stat.st_size


def _read_header(path: Path) -> tuple[str, int, int]:
    """Content type and pixel size, after checking the image data is complete."""
    try:
        with Image.open(path) as image:
            content_type = CONTENT_TYPES.get(image.format or "")
            if content_type is None:
                raise ImageProblem(f"is a {image.format} image; use JPEG, PNG or WEBP")
            width, height = image.size
            _check_complete(image)
    except ImageProblem:
        raise
    except UnidentifiedImageError:
        raise ImageProblem("is not an image: its content is not JPEG, PNG or WEBP") from None
    except Image.DecompressionBombError:
        raise ImageProblem("has too many pixels to be a reference image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports a truncated or corrupt file with any of these.
        raise ImageProblem(f"the image data is damaged or incomplete ({exc})") from None
    return content_type, width, height


def _check_complete(image: Image.Image) -> None:
    if image.format == "PNG":
        # verify() checks every chunk's checksum without decoding the pixels.
        image.verify()
        return
    if image.format in ("JPEG", "MPO"):
        # A reduced-scale decode still reads every byte, at a fraction of the memory.
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
    image.load()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ImageProblem(f"cannot read the file: {exc.strerror}") from None
    return digest.hexdigest()
