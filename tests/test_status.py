"""The row's state machine and the results file's columns, each defined in one place.

What these pin down matters to a user: every status is either a job at the provider or
a row that never became one (so polling, costs and repair agree on what was paid for),
the report can list every status, and a new results file has the header existing files
and spreadsheets were built against.
"""

from __future__ import annotations

from pathlib import Path

from batchgen.columns import ASSET_PATH_COLUMNS, FIXED_COLUMNS, REQUEST_COLUMNS
from batchgen.ledger import Ledger
from batchgen.status import (
    AT_PROVIDER,
    ATTENTION,
    MAYBE_PAID,
    NEVER_A_JOB,
    NOT_SENT,
    ORDER,
    Status,
    is_pending,
    was_paid,
)

ALL_STATUSES = {value for name, value in vars(Status).items() if name.isupper()}

#: The header of a new results file (older files keep the header they were written with).
HEADER = (
    "key,row,job_id,status,progress,error_code,error_message,attempts,timestamp,"
    "submitted_at,model,prompt,seconds,size,image,style,watermark,private,remix_of,"
    "expires_at,video_url,file,file_bytes,sha256,thumbnail,spritesheet"
)


def test_every_status_is_either_a_job_or_never_became_one() -> None:
    assert AT_PROVIDER | NEVER_A_JOB == ALL_STATUSES
    assert not AT_PROVIDER & NEVER_A_JOB
    assert NOT_SENT not in ALL_STATUSES  # a count, never written to the results file


def test_the_report_lists_every_status_once() -> None:
    assert sorted(ORDER) == sorted(ALL_STATUSES)
    assert ATTENTION <= ALL_STATUSES


def test_a_row_counts_as_paid_when_it_has_a_job_or_a_create_may_have_made_one() -> None:
    assert was_paid({"job_id": "video_1", "status": Status.FAILED})
    assert all(was_paid({"status": status}) for status in MAYBE_PAID)
    assert not was_paid({"status": Status.REJECTED})


def test_only_a_job_without_a_final_status_is_polled() -> None:
    assert is_pending({"job_id": "video_1", "status": Status.IN_PROGRESS})
    assert is_pending({"job_id": "video_1", "status": "rendering"})  # a relay's own word
    assert not is_pending({"job_id": "video_1", "status": Status.DOWNLOADED})
    assert not is_pending({"status": Status.QUEUED})


def test_a_new_results_file_has_the_header_earlier_versions_wrote(tmp_path: Path) -> None:
    results = tmp_path / "night.results.csv"
    with Ledger.open(results, passthrough=["campaign"]):
        pass
    first_line = results.read_bytes().decode("utf-8-sig").splitlines()[0]
    assert first_line == HEADER + ",campaign"
    assert set(REQUEST_COLUMNS) | set(ASSET_PATH_COLUMNS) <= set(FIXED_COLUMNS)
