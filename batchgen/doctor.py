"""``batchgen doctor``: check a provider against a profile without spending anything.

Only GET requests leave (a create is a purchase, so none is ever sent): the list, a job id
that cannot exist, and, given a finished job of the operator's (``--job-id``) or one the
list shows, its retrieve answer and its content. Each answer is compared with the profile
setting that describes it, and the report says which settings fit and what to write where
one does not. A provider that cannot be reached, or refuses the key, stops the check
(:class:`~batchgen.errors.ProviderCheckError`, exit 2).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import aiohttp

from batchgen.errors import ApiError, BadResponseError, ProviderCheckError, RateLimitedError
from batchgen.profile import PROVIDER_STATUSES, Profile
from batchgen.profile_files import load_profile
from batchgen.provider.client import Download, Video, VideoClient
from batchgen.provider.config import UrlSource
from batchgen.provider.resolve import Provider, ProviderOptions, profile_name, provider_for_run
from batchgen.status import Status

T = TypeVar("T")
Verdict = Literal["fits", "does not fit", "note"]
KEY_REFUSED = frozenset({401, 403})
#: Statuses of ours a provider's word may map to (``expired``: its link ran out).
KNOWN_STATUSES = frozenset(PROVIDER_STATUSES) | {Status.EXPIRED}
RATE_LIMIT_TRIES = 3
MAX_RATE_LIMIT_WAIT = 10.0
MESSAGE_CHARS = 120


@dataclass(frozen=True)
class Finding:
    """One check: what the provider answered and whether the profile's setting fits it."""

    check: str
    seen: str
    verdict: Verdict
    advice: str = ""

    def line(self) -> str:
        """The finding as one line of the report."""
        advice = f": {self.advice}" if self.advice else ""
        return f"  {self.verdict:<12} {self.check}: {self.seen}{advice}"


@dataclass
class DoctorReport:
    """Everything ``doctor`` saw at one provider."""

    profile: str
    base_url: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def misfits(self) -> list[Finding]:
        """The findings whose profile setting does not fit what the provider did."""
        return [f for f in self.findings if f.verdict == "does not fit"]

    @property
    def exit_code(self) -> int:
        """0 when every setting fits, 1 when one does not."""
        return 1 if self.misfits else 0

    def render(self) -> str:
        """The report as the CLI prints it."""
        head = (
            f"batchgen doctor: profile {self.profile} at {self.base_url} "
            "(GET requests only: nothing was created)"
        )
        lines = [head, *(f.line() for f in self.findings)]
        if self.misfits:
            lines.append(
                f"{len(self.misfits)} setting(s) do not fit: put the changes in a profile of "
                f"your own (extends: {self.profile}) and pass --profile FILE"
            )
        else:
            lines.append("every setting checked fits")
        return "\n".join(lines)


def doctor_provider(options: ProviderOptions) -> Provider:
    """The provider to check, its address and key found as ``run`` finds them (there is
    no manifest: ``--base-url``, ``$OPENAI_BASE_URL``, the profile's default)."""
    name = profile_name(options.profile, None)
    no_manifest = UrlSource(None, "the manifest's base_url:", operator=False)
    return provider_for_run(
        options, load_profile(name), manifest_url=no_manifest, name=name, mock=False, dry_run=False
    )


def check_provider(provider: Provider, job_id: str | None = None) -> DoctorReport:
    """Check ``provider`` against its profile; ``job_id`` names a finished job to look at."""
    return asyncio.run(_check(provider, job_id))


async def _check(provider: Provider, job_id: str | None) -> DoctorReport:
    async with aiohttp.ClientSession() as session:
        client = VideoClient(
            session,
            provider.base_url,
            provider.profile,
            provider.key(),
            timeout=provider.request_timeout,
        )
        doctor = _Doctor(client, provider.profile)
        await doctor.run(job_id)
    return DoctorReport(provider.profile.name, provider.base_url, doctor.findings)


class _Doctor:
    """The checks, in order; each appends its findings."""

    def __init__(self, client: VideoClient, profile: Profile) -> None:
        self.client = client
        self.profile = profile
        self.findings: list[Finding] = []
        self._key_seen = False

    async def run(self, job_id: str | None) -> None:
        listed = await self.listing()
        await self.unknown_id()
        finished = job_id or next((v.id for v in listed if v.status == Status.COMPLETED), None)
        if finished is None:
            self.note("job", "no finished job to look at", "pass --job-id ID of a finished job")
            return
        video = await self.job(finished)
        if video is not None:
            await self.content(video)

    def note(self, check: str, seen: str, advice: str = "") -> None:
        self.findings.append(Finding(check, seen, "note", advice))

    def verdict(self, check: str, seen: str, fits: bool, advice: str) -> None:
        self.findings.append(Finding(check, seen, "fits" if fits else "does not fit", advice))

    async def get(self, call: Callable[[], Awaitable[T]], what: str) -> T | ApiError:
        """The answer to one GET, or the provider's error; stops the check when the
        provider cannot be reached or refuses the key. A 429 is waited out a little."""
        for attempt in range(RATE_LIMIT_TRIES):
            try:
                result = await call()
            except RateLimitedError as exc:
                if attempt == RATE_LIMIT_TRIES - 1:
                    return exc
                await asyncio.sleep(
                    min(exc.retry_after or 2.0 * (attempt + 1), MAX_RATE_LIMIT_WAIT)
                )
                continue
            except ApiError as exc:
                self._stop_if_fatal(exc, what)
                self._key_accepted(what, f"HTTP {exc.status}")
                return exc
            self._key_accepted(what, "HTTP 200")
            return result
        raise AssertionError("unreachable")

    def _stop_if_fatal(self, error: ApiError, what: str) -> None:
        base = self.client.base_url
        if error.status in KEY_REFUSED:
            raise ProviderCheckError(
                f"{base} refused the key ({what} -> {said(error)}): set the API key "
                "variable to a key this provider accepts (see --api-key-env); nothing was sent"
            )
        # Once the provider has answered, a broken request is a finding, not "unreachable".
        if error.status is None and not self._key_seen and not isinstance(error, BadResponseError):
            raise ProviderCheckError(f"cannot reach {base} ({what}: {error.message})")

    def _key_accepted(self, what: str, answer: str) -> None:
        if not self._key_seen:
            self._key_seen = True
            self.verdict("key", f"accepted ({what} answered {answer}, not 401/403)", True, "")

    async def listing(self) -> tuple[Video, ...]:
        """Can the provider list its jobs (``can_list``)?"""
        page = await self.get(lambda: self.client.list_videos(limit=20), "GET /videos")
        if isinstance(page, RateLimitedError):
            self.note("list", f"not checked: rate limited ({said(page)})", "run doctor again later")
            return ()
        if isinstance(page, ApiError):
            seen = f"GET /videos -> {said(page)}"
            fits = not self.profile.can_list
            advice = (
                "can_list: false fits" if fits else "the provider cannot list: use can_list: false"
            )
            self.verdict("list", seen, fits, advice)
            return ()
        seen = f"GET /videos answered a page of {len(page.videos)} job(s)"
        advice = (
            "can_list: true fits"
            if self.profile.can_list
            else "the provider lists its jobs: can_list: true would let lost creates be looked up"
        )
        self.verdict("list", seen, self.profile.can_list, advice)
        return page.videos

    async def unknown_id(self) -> None:
        """How does "no such job" look (``not_found``)?"""
        made_up = self.profile.simulated.id_prefix + "0" * self.profile.simulated.id_length
        what = f"GET /videos/{made_up}"
        answer = await self.get(lambda: self.client.retrieve(made_up), what)
        if isinstance(answer, Video):
            self.verdict("unknown id", f"{what} answered a job", False, "no setting fits this")
            return
        seen = f"{what} -> {said(answer)}"
        status = answer.status or 0
        if self.profile.not_found.matches(status, answer.code):
            where = "codes" if status not in self.profile.not_found.statuses else "statuses"
            self.verdict("unknown id", seen, True, f"fits not_found.{where}")
        elif 400 <= status < 500 and status != 429:
            self.verdict("unknown id", seen, False, _not_found_advice(status, answer.code))
        else:
            self.note(
                "unknown id",
                seen,
                "not a 4xx: a job the provider lost would be polled until --timeout, "
                "never recorded lost (no not_found setting should take a 5xx)",
            )

    async def job(self, job_id: str) -> Video | None:
        """Are the job's status words in the profile's ``statuses``?"""
        what = f"GET /videos/{job_id}"
        video = await self.get(lambda: self.client.retrieve(job_id), what)
        if isinstance(video, ApiError):
            self.verdict("job", f"{what} -> {said(video)}", False, "pass the id of a job of yours")
            return None
        fits = video.status in KNOWN_STATUSES
        advice = (
            f"status maps to {video.status}: fits statuses"
            if fits
            else f"add {video.status.lower()!r}: completed (or what it means) to statuses"
        )
        self.verdict("status word", f"{what} -> {video.status!r}", fits, advice)
        if video.status != Status.COMPLETED:
            self.note("content", f"not checked: the job is {video.status}")
            return None
        return video

    async def content(self, video: Video) -> None:
        """Is the video served where the profile looks for it (``video``), and are its
        previews real?"""
        with tempfile.TemporaryDirectory(prefix="batchgen-doctor-") as folder:
            where = video.video_url or f"GET /videos/{video.id}/content"
            got = await self._fetch(video, Path(folder) / "video", "video")
            if isinstance(got, ApiError):
                advice = "no profile setting finds the video: see video.url_fields"
                self.verdict("content", f"{where} -> {said(got)}", False, advice)
                return
            seen = f"{where} served {got.size_bytes:,} bytes"
            self.verdict("content", seen, True, _video_advice(self.profile, video))
            for variant in self.profile.video.previews:
                await self.preview(video, Path(folder) / variant, variant, got.sha256)

    async def preview(self, video: Video, dest: Path, variant: str, video_sha: str) -> None:
        got = await self._fetch(video, dest, variant)
        what = f"variant={variant}"
        if isinstance(got, ApiError):
            advice = f"remove {variant} from video.previews"
            self.verdict("preview", f"{what} -> {said(got)}", False, advice)
        elif got.sha256 == video_sha:
            advice = "the provider ignores variant=: use video.previews: []"
            self.verdict("preview", f"{what} sent the video again", False, advice)
        else:
            self.verdict(
                "preview", f"{what} served {got.size_bytes:,} bytes", True, "fits previews"
            )

    async def _fetch(self, video: Video, dest: Path, variant: str) -> Download | ApiError:
        link = video.video_url if variant == "video" else ""
        if not self.client.can_download(variant, link):
            return ApiError("the profile has no content endpoint and the answer no link")
        what = f"content of {video.id}"
        return await self.get(
            lambda: self.client.download(video.id, dest, variant=variant, link=link), what
        )


def _not_found_advice(status: int, code: str) -> str:
    if status == 404 or not code:
        return f"add {status} to not_found.statuses"
    return f"add {code} to not_found.codes"


def _video_advice(profile: Profile, video: Video) -> str:
    if video.video_url:
        return "the link in the retrieve answer: fits video.url_fields"
    return "the content endpoint: fits video.content_endpoint: true"


def said(error: ApiError) -> str:
    """What the provider answered, short: ``HTTP 400 task_not_exist: the message``."""
    message = " ".join(error.message.split())  # one line, whatever the provider sent
    prefix = f"HTTP {error.status}: "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    status = f"HTTP {error.status}" if error.status else "no HTTP answer"
    code = f" {error.code}" if error.code and error.code != str(error.status) else ""
    return f"{status}{code}: {message}"
