"""Every column of the results file, and the functions that build a line's changes.

A new results file's header is :data:`FIXED_COLUMNS` then the manifest's passthrough
columns; existing files keep whatever header they were written with. Each stage records
its changes through one of the builders here, so a column is named in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from batchgen.errors import ApiError
from batchgen.jobs import CORE_FIELDS, InvalidRow, Job
from batchgen.status import Status

if TYPE_CHECKING:  # annotations only: the ledger needs column names, not an HTTP client
    from batchgen.provider.client import Download, Video

#: Extra fields some provider takes; in a manifest for a profile without them they are errors,
#: not passthrough, so a relay's ``style`` column is never silently dropped for OpenAI.
KNOWN_EXTRA_FIELDS = ("style", "watermark", "private")

BOOKKEEPING_COLUMNS = (
    "key",
    "row",
    "job_id",
    "status",
    "progress",
    "error_code",
    "error_message",
    "attempts",
    "timestamp",
    "submitted_at",  # when the first create that may have made this job was sent
)
#: What is sent for a row, as the user wrote it.
REQUEST_COLUMNS = (*CORE_FIELDS, "image", *KNOWN_EXTRA_FIELDS, "remix_of")
#: The ledger column holding each downloaded variant's path.
VARIANT_COLUMNS = {"video": "file", "thumbnail": "thumbnail", "spritesheet": "spritesheet"}
#: Columns holding a path to a downloaded asset (relative to the cwd of the download).
ASSET_PATH_COLUMNS = tuple(VARIANT_COLUMNS.values())
#: ``video_url``: the link to the video a relay's retrieve answer gave (downloads use it).
ASSET_COLUMNS = (
    "expires_at", "video_url", "file", "file_bytes", "sha256", "thumbnail", "spritesheet",
)  # fmt: skip
FIXED_COLUMNS = BOOKKEEPING_COLUMNS + REQUEST_COLUMNS + ASSET_COLUMNS

Changes = dict[str, object]


def request_columns(job: Job) -> Changes:
    """The columns describing what is sent for ``job`` (and its passthrough)."""
    remix = job.remix_source or job.remix_of  # as the user wrote it: a row id or a job id
    columns = {**job.passthrough, **job.fields, "row": job.row, "image": job.image_text}
    return {**columns, "remix_of": remix} if remix else columns


def intent_columns(job: Job, attempts: int, submitted_at: str | None) -> Changes:
    """The ``submitting`` intent written before a create; ``submitted_at`` only on the
    first create that may be paid for (None keeps the recorded one)."""
    changes = {**request_columns(job), "status": Status.SUBMITTING, "attempts": attempts}
    if submitted_at is not None:
        changes["submitted_at"] = submitted_at
    return {**changes, "error_code": "", "error_message": ""}


def skipped_columns(job: Job, status: str, reason: str) -> Changes:
    """A row this run does not send, recorded as ``status`` (``skipped_budget``) and why."""
    return {**request_columns(job), "status": status, "error_message": reason}


def invalid_columns(row: InvalidRow, message: str) -> Changes:
    """A row that failed validation, recorded as ``invalid`` with its cells as written."""
    return {**row.values, "row": row.row, "status": Status.INVALID, "error_message": message}


def video_changes(video: Video) -> Changes:
    """The columns a created or retrieved job updates (a link once known is kept: a later
    answer without one does not blank it)."""
    changes: Changes = {
        "status": video.status,
        "progress": video.progress,
        "error_code": video.error_code,
        "error_message": video.error_message,
        "expires_at": video.expires_at or "",
    }
    return {**changes, "video_url": video.video_url} if video.video_url else changes


def created_columns(video: Video) -> Changes:
    """The columns of a row whose create made ``video``."""
    return {"job_id": video.id, **video_changes(video)}


def failure_columns(status: str, error: ApiError) -> Changes:
    """The columns of a row or job that ended in ``status`` because of ``error``."""
    code = error.code or (str(error.status) if error.status else "")
    return {"status": status, "error_code": code, "error_message": error.message}


def expired_columns(message: str) -> Changes:
    """The columns of a job whose download link expired before the video was fetched."""
    return {"status": Status.EXPIRED, "error_code": "expired", "error_message": message}


def handed_over_columns() -> Changes:
    """The columns of a pending job whose provider handed its video over: it is complete,
    though no status check said so (the video's own columns follow)."""
    return {"status": Status.COMPLETED, "progress": 100}


def video_file_columns(download: Download) -> Changes:
    """The columns of a job whose video was downloaded whole."""
    return {
        "status": Status.DOWNLOADED,
        "file": str(download.path),
        "file_bytes": download.size_bytes,
        "sha256": download.sha256,
        "error_code": "",
        "error_message": "",
    }


def preview_columns(paths: Mapping[str, str]) -> Changes:
    """The columns of a downloaded job's previews, ``paths`` by variant."""
    return {"status": Status.DOWNLOADED, **{VARIANT_COLUMNS[v]: p for v, p in paths.items()}}
