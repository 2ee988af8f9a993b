"""Downloading: each completed job's video (and previews, when asked) into one folder.

The thumbnail comes with the video by default (``thumbnails``) wherever the profile says
the provider makes one: the contact sheet needs it, and asking a provider that has none
would only fetch the whole video again.

Files stream to ``<name>.part`` and are renamed when whole (see
:meth:`VideoClient.download`), so a crash never leaves a truncated file under a final
name. A file counts as downloaded only when the ledger records it *and* it is on disk at
the recorded size; anything else is fetched again. The ledger gets a ``downloaded`` line
as soon as the video is whole (so a crash while fetching previews does not orphan it),
and another when previews were added.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from batchgen.columns import (
    VARIANT_COLUMNS,
    expired_columns,
    failure_columns,
    handed_over_columns,
    preview_columns,
    video_file_columns,
)
from batchgen.errors import ApiError, NotFoundError, RejectedError, RetryableError, UsageError
from batchgen.follow.naming import FileNamer
from batchgen.follow.poll import AUTH_FAILURES, paced
from batchgen.ledger import Ledger
from batchgen.profile import Profile
from batchgen.provider.client import Download, VideoClient
from batchgen.provider.pacing import Throttle
from batchgen.provider.retry import RetrySettings
from batchgen.status import DONE, Status

VIDEO = "video"
THUMBNAIL = "thumbnail"
VARIANTS = tuple(VARIANT_COLUMNS)
#: A relay's "not completed yet" for content: not a failure, try again later.
NOT_READY_STATUSES = frozenset({400, 409})
GONE_STATUS = 410


def check_variants(variants: Sequence[str], profile: Profile | None = None) -> tuple[str, ...]:
    """The variants to fetch, video first; raises :class:`UsageError` for an unknown one,
    or a preview ``profile``'s provider does not make (its answer would be the whole video
    again, or nothing)."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UsageError(f"unknown variant {unknown[0]!r} (use any of: {', '.join(VARIANTS)})")
    wanted = (VIDEO, *dict.fromkeys(v for v in variants if v != VIDEO))
    absent = [v for v in wanted[1:] if profile is not None and v not in profile.video.previews]
    if absent and profile is not None:
        has = ", ".join(profile.video.previews) or "no previews"
        raise UsageError(
            f"--variant {absent[0]}: the {profile.name} profile's provider has no such preview "
            f"(it has {has}); download the video alone"
        )
    return wanted


def with_thumbnail(variants: Sequence[str], profile: Profile) -> tuple[str, ...]:
    """``variants`` (checked, video first) plus the thumbnail when ``profile``'s provider
    makes one; unchanged when it has none or it is already asked for."""
    wanted = check_variants(variants, profile)
    if THUMBNAIL in profile.video.previews and THUMBNAIL not in wanted:
        return (*wanted, THUMBNAIL)
    return wanted


def is_not_ready(error: ApiError, statuses: frozenset[int] = NOT_READY_STATUSES) -> bool:
    """A content answer that means "not yet" (a relay's 400/409: the profile's
    ``not_ready``), not a final failure."""
    if isinstance(error, NotFoundError):  # new-api's 400 task_not_exist: no such job
        return False
    return isinstance(error, RejectedError) and error.status in statuses


@dataclass(frozen=True)
class FetchResult:
    """What one download attempt for a row came to."""

    status: str  # the row's status afterwards
    files: int = 0  # files written
    bytes: int = 0
    again: bool = False  # worth another try later: not ready yet, or retries ran out
    error: ApiError | None = None  # why something was not downloaded


class Downloader:
    """Downloads the completed jobs of one ledger into one folder."""

    def __init__(
        self,
        client: VideoClient,
        ledger: Ledger,
        throttle: Throttle,
        retry: RetrySettings,
        namer: FileNamer,
        *,
        variants: Sequence[str] = (VIDEO,),
        thumbnails: bool = False,
        wall: Callable[[], float] = time.time,
        logger: logging.Logger,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._throttle = throttle
        self._retry = retry
        self._namer = namer
        checked = with_thumbnail if thumbnails else check_variants
        self.variants = checked(variants, client.profile)
        self._wall = wall  # compared with the provider's expires_at (Unix time)
        self._logger = logger

    def wants(self, key: str) -> bool:
        """Whether ``key`` has something to download: completed, or a file gone missing.

        A downloaded video deleted since, or a preview it has not (the thumbnail a later
        run asks for by default), is fetched only while its link is valid: after that the
        provider answers 404 and the night would end "needs attention" for nothing.
        """
        state = self._ledger.states.get(key, {})
        status, missing = state.get("status"), self._missing(state)
        if status == Status.DOWNLOADED and missing:
            return not self._link_expired(state)
        return status in DONE and bool(missing)

    async def fetch(self, key: str) -> FetchResult:
        """Download what ``key`` lacks: the video first, then the previews asked for."""
        state = self._ledger.states[key]
        missing = self._missing(state)
        if VIDEO in missing and state["status"] == Status.COMPLETED and self._link_expired(state):
            return self._expired(key, _expiry_message(state))
        stem = self._namer.stem_for(key, state)
        video: Download | None = None
        if VIDEO in missing:
            try:
                link = await self._video_link(key)
                if link is None:
                    return self._not_downloadable(key)
                video = await self._get(state["job_id"], stem, VIDEO, link)
            except ApiError as exc:
                return self._video_failed(key, exc)
        return await self._keep(key, stem, video, missing)

    async def fetch_unconfirmed(self, key: str) -> FetchResult | None:
        """Download the video of ``key``, still pending in the ledger but surely done,
        from the content endpoint of a provider that answers "not ready" there for an
        unfinished job (the profile's ``video.content_says_not_ready``): the download is
        its status check. The job is recorded completed, then downloaded. None when the
        provider did not hand the video over (not ready, or anything else): nothing is
        recorded, and a status check says where the job stands.
        """
        state = self._ledger.states[key]
        stem = self._namer.stem_for(key, state)
        try:
            video = await self._get(state["job_id"], stem, VIDEO)
        except ApiError as exc:
            _raise_if_auth(exc)
            if not is_not_ready(exc, self._client.profile.not_ready):
                self._logger.info("download %s before its status check: %s", key, exc.message)
            return None
        self._ledger.record(key, handed_over_columns())
        return await self._keep(key, stem, video, self._missing(self._ledger.states[key]))

    async def _keep(
        self, key: str, stem: str, video: Download | None, missing: Sequence[str]
    ) -> FetchResult:
        """Record the video just fetched (if any), then fetch the previews ``missing``."""
        written: list[Download] = []
        if video is not None:
            self._ledger.record(key, video_file_columns(video))
            written.append(video)
        previews, error = await self._previews(key, stem, missing)
        written.extend(previews.values())
        if previews:
            paths = {v: str(d.path) for v, d in previews.items()}
            self._ledger.record(key, preview_columns(paths))
        status = self._ledger.states[key]["status"]
        return FetchResult(status, len(written), sum(d.size_bytes for d in written), error=error)

    def _missing(self, state: Mapping[str, str]) -> list[str]:
        return [v for v in self.variants if not self._present(state, v)]

    def _present(self, state: Mapping[str, str], variant: str) -> bool:
        """Recorded in the ledger and on disk in the folder (at the recorded size, for video)."""
        recorded = state.get(VARIANT_COLUMNS[variant], "")
        if not recorded or state.get("status") != Status.DOWNLOADED:
            return False
        path = self._namer.folder / Path(recorded).name
        if not path.is_file():
            return False
        return variant != VIDEO or str(path.stat().st_size) == state.get("file_bytes")

    def _link_expired(self, state: Mapping[str, str]) -> bool:
        expires_at = state.get("expires_at", "")
        return expires_at.isdigit() and int(expires_at) <= self._wall()

    async def _video_link(self, key: str) -> str | None:
        """The link to the video ("" for the content endpoint), or None when there is no way
        to it yet. A profile without a content endpoint needs the link from the retrieve
        answer: when the results file has none (an older file, an answer that had none
        then), the job is retrieved once more to find it."""
        state = self._ledger.states[key]
        link = state.get("video_url", "")
        if self._client.can_download(VIDEO, link):
            return link
        job_id = state["job_id"]
        video = await paced(self._throttle, self._retry, lambda: self._client.retrieve(job_id))
        if not video.video_url:
            return None
        self._ledger.record(key, {"video_url": video.video_url})
        return video.video_url

    def _not_downloadable(self, key: str) -> FetchResult:
        """A completed job whose video has no known address yet: it stays completed."""
        video = self._client.profile.video
        self._logger.warning(
            "download %s: not downloadable yet: the provider's answer has no link to the video "
            "(looked at %s) and the %s profile has no content endpoint",
            key,
            ", ".join(video.url_fields) or "no url_fields",
            self._client.profile.name,
        )
        return FetchResult(self._ledger.states[key]["status"], again=True)

    async def _get(self, job_id: str, stem: str, variant: str, link: str = "") -> Download:
        dest = self._namer.path(stem, variant)
        dest.parent.mkdir(parents=True, exist_ok=True)
        return await paced(
            self._throttle,
            self._retry,
            lambda: self._client.download(job_id, dest, variant=variant, link=link),
        )

    async def _previews(
        self, key: str, stem: str, missing: Sequence[str]
    ) -> tuple[dict[str, Download], ApiError | None]:
        """Fetch the missing previews; one that fails is logged and left for the next run."""
        fetched: dict[str, Download] = {}
        error: ApiError | None = None
        for variant in missing:
            if variant == VIDEO:
                continue
            try:
                fetched[variant] = await self._get(
                    self._ledger.states[key]["job_id"], stem, variant
                )
            except ApiError as exc:
                _raise_if_auth(exc)
                self._logger.warning("download %s %s: %s", key, variant, exc.message)
                error = exc
        return fetched, error

    def _video_failed(self, key: str, error: ApiError) -> FetchResult:
        """Classify a failed video download: expired, lost, not ready yet, or an error."""
        _raise_if_auth(error)
        state = self._ledger.states[key]
        if is_not_ready(error, self._client.profile.not_ready):
            self._logger.info("download %s: not ready yet (%s)", key, error.message)
            return FetchResult(state["status"], again=True)
        final = _final_status(error, link_expired=self._link_expired(state))
        if final is not None and state["status"] == Status.COMPLETED:
            return self._give_up(key, final, error)
        self._logger.warning("download %s: %s", key, error.message)
        return FetchResult(state["status"], again=isinstance(error, RetryableError), error=error)

    def _expired(self, key: str, message: str) -> FetchResult:
        self._logger.warning("download %s: %s", key, message)
        self._ledger.record(key, expired_columns(message))
        return FetchResult(Status.EXPIRED)

    def _give_up(self, key: str, status: str, error: ApiError) -> FetchResult:
        self._logger.warning("download %s: %s (%s)", key, error.message, status)
        self._ledger.record(key, failure_columns(status, error))
        return FetchResult(status)


def _final_status(error: ApiError, *, link_expired: bool) -> str | None:
    """``expired`` for 410, or a 404 that says so or comes after the expiry; ``lost`` for
    another 404 (the provider no longer knows the job); None when not final."""
    if error.status == GONE_STATUS:
        return Status.EXPIRED
    if isinstance(error, NotFoundError):
        mentions = "expire" in f"{error.code} {error.message}".lower()
        return Status.EXPIRED if mentions or link_expired else Status.LOST
    return None


def _raise_if_auth(error: ApiError) -> None:
    """A refused key fails every download the same way: stop rather than log each."""
    if error.status in AUTH_FAILURES:
        raise error


def _expiry_message(state: Mapping[str, str]) -> str:
    when = datetime.fromtimestamp(int(state["expires_at"]), timezone.utc)
    return f"the download link expired at {when:%Y-%m-%d %H:%M} UTC, before the video was fetched"
