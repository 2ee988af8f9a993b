"""Validated jobs: the plain data that flows from validation to submission.

A :class:`Job` is exactly what will be sent for one row, plus the row's stable key, which
is how the ledger knows a row was already paid for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The form fields every provider takes, in the order the ledger records them.
CORE_FIELDS = ("model", "prompt", "seconds", "size")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A reference image that passed validation."""

    path: Path
    content_type: str  # detected from the bytes: image/jpeg, image/png or image/webp
    sha256: str
    width: int
    height: int
    size_bytes: int

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)  # slots: a run can hold 100,000 of them
class Job:
    """One row, validated: what to send and how to recognise it on a later run.

    A validated job is ours; what the provider makes of it, with its job id, is a
    :class:`~batchgen.provider.client.Video`.
    """

    key: str
    row: int  # the row number the user sees (header = 1; YAML: the line of the row)
    fields: Mapping[str, str]  # form fields to send: model, prompt, seconds, size, extras
    image: ImageRef | None = None
    image_text: str = ""  # the image cell as the user wrote it, for the results file
    passthrough: Mapping[str, str] = field(default_factory=dict)
    remix_of: str = ""  # a provider job id: this row remixes that video with its prompt
    remix_source: str = ""  # the key of a manifest row whose job this row remixes, once complete

    @property
    def seconds(self) -> int:
        return int(self.fields["seconds"])


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that failed validation, recorded as ``invalid`` under ``--skip-invalid``."""

    key: str
    row: int
    values: Mapping[str, str]
    messages: tuple[str, ...]


def content_hash(fields: Mapping[str, str], image_sha256: str | None) -> str:
    """A short hash of what is sent: the same fields and image bytes give the same hash."""
    canonical = json.dumps(
        {"fields": dict(sorted(fields.items())), "image": image_sha256 or ""},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class KeyMaker:
    """Gives each row its stable key: the user's ``id``, else content hash plus occurrence.

    Two identical rows are two intended videos: the second gets ``…-2`` and neither is
    dropped; editing a row changes its hash, so it becomes a new row.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def key_for(
        self, user_id: str | None, fields: Mapping[str, str], image_sha256: str | None
    ) -> str:
        if user_id:
            return user_id
        digest = content_hash(fields, image_sha256)
        occurrence = self._seen.get(digest, 0) + 1
        self._seen[digest] = occurrence
        return f"h{digest}-{occurrence}"
