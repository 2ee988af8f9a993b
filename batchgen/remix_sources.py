"""Whether a remix's source row can still give it a video to remix, and if not, why.

A remix of another row (``remix_of: <row id>``) is sent once that row's job completes.
A source that ended without a video is the remix's reason too, recorded on the remix's
own line so that the results file says why it was not sent and the exit code asks for
attention:

- the source's job ended for good (``failed``, ``expired``, ``lost``) or the source was
  refused (``rejected``, ``invalid``): the remix is ``rejected``; fix the source (a job
  that failed needs a new ``id``), then ``--retry-rejected`` sends both;
- the source gave up for now (``error``, ``unresolved``, ``skipped_budget``): the remix
  is ``error``, and the run that retries the source sends it too.
"""

from __future__ import annotations

from collections.abc import Mapping

from batchgen.errors import ApiError, RejectedError
from batchgen.status import DEAD_SOURCES, STALLED_SOURCES


def source_failure(name: str, source: Mapping[str, str]) -> ApiError | None:
    """Why the remix of row ``name`` (whose latest state is ``source``) cannot be sent.

    A :class:`RejectedError` when the source is dead, a plain :class:`ApiError` (recorded
    as ``error``, retried by the next run) when it stalled, ``None`` when it is complete
    or may still complete (not sent yet, in flight, or a provider's own status word).
    """
    status = source.get("status", "")
    if status not in DEAD_SOURCES and status not in STALLED_SOURCES:
        return None
    detail = source.get("error_message", "")
    message = f"its source row {name} ended {status}" + (f": {detail}" if detail else "")
    failure = RejectedError if status in DEAD_SOURCES else ApiError
    return failure(message, code=f"source_{status}")
