"""The next step for a row needing attention: one sentence naming what moves it on."""

from __future__ import annotations

import pytest

from batchgen.next_steps import next_step
from batchgen.status import ATTENTION, BUSY, DONE, Status


@pytest.mark.parametrize(
    ("state", "says"),
    [
        (
            {"status": Status.INVALID, "error_code": "image", "error_message": "image is 640x480"},
            "image's size",
        ),
        ({"status": Status.INVALID, "error_code": "seconds"}, "the seconds column"),
        ({"status": Status.REJECTED, "error_message": "size not allowed"}, "batchgen profiles"),
        (
            {"status": Status.FAILED, "error_code": "moderation_blocked"},
            "moderation refused the prompt: rewrite it",
        ),
        (
            {"status": Status.UNRESOLVED, "key": "c-10"},
            "batchgen resolve RESULTS c-10 --job-id ID",
        ),
        ({"status": Status.EXPIRED}, "link expired"),
        ({"status": Status.ERROR, "error_code": "resolved_not_made"}, "next run sends it"),
        ({"status": Status.SKIPPED_BUDGET}, "--max-cost"),
        ({"status": Status.REJECTED, "error_code": "source_failed"}, "remix source"),
    ],
)
def test_next_step_names_the_remedy(state: dict[str, str], says: str) -> None:
    assert says in next_step(state)


def test_every_status_needing_attention_has_a_next_step_and_good_rows_none() -> None:
    assert all(next_step({"status": s}) for s in ATTENTION)
    assert not any(next_step({"status": s}) for s in DONE | BUSY | {"", "mystery"})
