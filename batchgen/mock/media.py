"""What the simulated provider serves: deterministic fake MP4s and preview images."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from PIL import Image

CHUNK_BYTES = 16 * 1024
THUMB_WIDTH = 160
# A real MP4 starts with an ftyp box; clients may sniff it to check what they downloaded.
FTYP_BOX = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def fake_mp4(job_id: str, size: int) -> bytes:
    """An ftyp box then one mdat box filling ``size`` bytes, deterministic per job."""
    payload_size = max(0, size - len(FTYP_BOX) - 8)
    seed = hashlib.sha256(job_id.encode()).digest()
    payload = (seed * (payload_size // len(seed) + 1))[:payload_size]
    mdat = (payload_size + 8).to_bytes(4, "big") + b"mdat" + payload
    return (FTYP_BOX + mdat)[:size]


def preview(job: dict[str, Any], image_format: str, frames: int) -> bytes:
    """A small image, one tile per frame: the reference image if there was one, else a
    colour derived from the prompt."""
    width, height = (int(n) for n in str(job["size"]).split("x"))
    tile = (THUMB_WIDTH, max(1, THUMB_WIDTH * height // width))
    colour = tuple(hashlib.sha256(str(job["prompt"]).encode()).digest()[:3])
    image = Image.new("RGB", (tile[0] * frames, tile[1]), colour)
    if job.get("_look"):
        with Image.open(io.BytesIO(job["_look"])) as look:
            frame = look.convert("RGB").resize(tile)
        for index in range(frames):
            image.paste(frame, (index * tile[0], 0))
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def small_copy(data: bytes) -> bytes:
    """A preview-sized PNG of an uploaded image (the job keeps this, not megabytes)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMB_WIDTH * 2, THUMB_WIDTH * 4))  # JPEGs decode at a fraction
        image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
    return out.getvalue()
