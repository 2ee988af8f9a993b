"""Inputs for the benchmark: manifests, reference images and results files, in a temp folder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from batchgen.columns import request_columns
from batchgen.ledger import Ledger
from batchgen.runner import prepare
from batchgen.status import Status

IMAGE_SIZE = (720, 1280)  # width x height, one of sora-2's sizes
HEADER = ("id", "prompt", "seconds", "size", "image", "campaign")


def prompt_for(n: int) -> str:
    """A plausible prompt of ordinary length, distinct per row."""
    return f"A paper boat drifting down a rain-soaked street at dusk, shot {n}, warm lights"


def write_manifest(path: Path, rows: int, *, images: list[str] | None = None) -> Path:
    """A CSV manifest of ``rows`` rows with ids; row ``n`` uses ``images[n]`` when given."""
    size = f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            image = images[n] if images is not None else ""
            writer.writerow([f"row-{n:06d}", prompt_for(n), "4", size, image, "bench"])
    return path


def write_noise_images(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` distinct random-noise images at 720x1280, ~4 MB each; names relative to
    ``folder``'s parent.

    Noise does not compress, so the files are as large as a detailed photo. Every fifth is
    an RGBA PNG (3.7 MB), the others JPEG at quality 100 without chroma subsampling (3.8 MB).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for n in range(count):
        if n % 5 == 0:
            name = f"noise-{n:04d}.png"
            pixels = rng.integers(0, 256, (IMAGE_SIZE[1], IMAGE_SIZE[0], 4), dtype=np.uint8)
            Image.fromarray(pixels, "RGBA").save(folder / name, "PNG", compress_level=0)
        else:
            name = f"noise-{n:04d}.jpg"
            pixels = rng.integers(0, 256, (IMAGE_SIZE[1], IMAGE_SIZE[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / name, "JPEG", quality=100, subsampling=0)
        names.append(f"{folder.name}/{name}")
    return names


def write_done_ledger(manifest: Path, results: Path) -> int:
    """Record every row of ``manifest`` as submitted (a job id, ``queued``) with the real
    :class:`Ledger`, as a finished run would have left ``results``; returns the row count."""
    validation = prepare(manifest).validation
    if validation.problems:
        raise RuntimeError(f"bench manifest invalid: {validation.problems[0]}")
    with Ledger.open(results, passthrough=HEADER) as ledger:
        for n, job in enumerate(validation.jobs):
            changes = {**request_columns(job), "attempts": 1, "status": Status.SUBMITTING}
            ledger.record(job.key, changes)
            ledger.record(job.key, {"job_id": f"video_{n:024d}", "status": Status.QUEUED})
    return len(validation.jobs)
