"""Finding out whether a create whose answer was lost made a job after all.

A create that timed out or whose connection reset after sending may have been paid for.
Sending it again blindly is how naive scripts pay twice. Instead, where the provider can
list its jobs, we look for one made after our intent with the same prompt, model, size
and seconds that no other row has claimed. Where it honours idempotency keys, sending
again with the same key is itself safe. Otherwise the outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass

from batchgen.jobs import Job
from batchgen.ledger import epoch_of
from batchgen.provider.client import Video, VideoClient
from batchgen.provider.pacing import Throttle

#: How far before our intent a provider's clock may put the job's creation.
CLOCK_SKEW_SECONDS = 300
MAX_PAGES = 50

FOUND = "found"
ABSENT = "absent"  # shown not to exist: safe to send
UNKNOWN = "unknown"  # cannot tell: sending might pay twice


@dataclass(frozen=True)
class Lookup:
    """The answer of a reconciliation: found (with its video), absent, or unknown."""

    outcome: str
    video: Video | None = None
    detail: str = ""


class Reconciler:
    """Looks up lost creates for one provider; ``claimed`` gives the job ids already owned.

    List requests go through the same ``throttle`` as creates.
    """

    def __init__(
        self, client: VideoClient, claimed: Callable[[], Set[str]], throttle: Throttle
    ) -> None:
        self._client = client
        self._claimed = claimed
        self._throttle = throttle

    async def look_up(self, job: Job, intent_timestamp: str) -> Lookup:
        """Is there a job for ``job`` created since ``intent_timestamp`` (ISO, from the ledger)?"""
        if self._client.profile.honours_idempotency_key:
            return Lookup(ABSENT, detail="the provider honours idempotency keys")
        blind = self.cannot_tell()
        if blind is not None:
            return Lookup(UNKNOWN, detail=blind)
        since = (epoch_of(intent_timestamp) or 0.0) - CLOCK_SKEW_SECONDS
        video = await self._search(job, since)
        if video is None:
            return Lookup(ABSENT, detail="no matching job in the provider's list")
        return Lookup(FOUND, video, detail=f"found {video.id} in the provider's list")

    def cannot_tell(self) -> str | None:
        """Why no lookup can ever settle a lost create here, or None when one can."""
        profile = self._client.profile
        if profile.honours_idempotency_key or profile.can_list:
            return None
        return f"the {profile.name} profile cannot list jobs"

    async def _search(self, job: Job, since: float) -> Video | None:
        after: str | None = None
        for _page in range(MAX_PAGES):
            async with self._throttle:
                page = await self._client.list_videos(after=after)
            claimed = self._claimed()
            for video in page.videos:
                recent = video.created_at is None or video.created_at >= since
                if recent and _matches(video, job) and video.id not in claimed:
                    return video
            oldest = page.videos[-1].created_at if page.videos else None
            if not page.has_more or (oldest is not None and oldest < since):
                return None
            after = page.last_id
        return None


def _matches(video: Video, job: Job) -> bool:
    if job.remix_of:  # a remix takes its model, size and seconds from the video it remixes
        return video.prompt == job.fields["prompt"] and video.remixed_from == job.remix_of
    return all(
        getattr(video, name) == job.fields.get(name, "")
        for name in ("prompt", "model", "size", "seconds")
        if getattr(video, name)  # a provider that omits a field cannot contradict it
    )
