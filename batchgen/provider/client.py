"""The HTTP client for the ``/videos`` endpoints of an OpenAI-compatible provider.

One method per endpoint; each turns the provider's answer into a :class:`Video` or into
one of batchgen's :mod:`~batchgen.errors`, classified by what can be done about it:
retryable (429, 5xx, transport trouble), final (other 4xx), or outcome unknown (the
request left but its answer was lost: the job may exist). Pacing and retries are the
caller's business (see :mod:`batchgen.provider.retry`); this module makes single requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import (
    AbstractContextManager,
    asynccontextmanager,
    nullcontext,
    suppress,
)
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urljoin

import aiohttp

from batchgen.errors import (
    ApiError,
    BadResponseError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from batchgen.jobs import Job
from batchgen.profile import Profile
from batchgen.profile_traits import MAYBE_MADE, NOTHING_MADE
from batchgen.provider.answers import bounded, error_details, excerpt, first_link, progress_of
from batchgen.provider.config import Secret, url_origin
from batchgen.provider.transfer import (
    RANGE_NOT_SATISFIABLE,
    discard_part,
    resume_headers,
    write_body,
)
from batchgen.provider.transfer import Download as Download  # re-exported: callers' type

MAX_REDIRECTS = 5
POLL_AFTER_HEADER = "openai-poll-after-ms"


@dataclass(frozen=True)
class Video:
    """A provider's video job, with its status already mapped to ours by the profile."""

    id: str
    status: str
    progress: int = 0
    created_at: int | None = None
    expires_at: int | None = None
    error_code: str = ""
    error_message: str = ""
    model: str = ""
    prompt: str = ""
    size: str = ""
    seconds: str = ""
    remixed_from: str = ""
    video_url: str = ""  # the link to the video in the answer, at the profile's url_fields
    completed_at: int | None = None  # epoch seconds, where the provider says

    @classmethod
    def from_json(cls, data: Mapping[str, Any], profile: Profile) -> Video:
        """Read a VideoResource; raises :class:`BadResponseError` when it has no id."""
        job_id = data.get("id") or data.get("task_id")
        if not isinstance(job_id, (str, int)) or job_id == "":
            raise BadResponseError(
                f"the provider's answer has no job id: {excerpt(json.dumps(data))}"
            )
        raw_error = data.get("error")
        error: Mapping[str, Any] = raw_error if isinstance(raw_error, Mapping) else {}
        return cls(
            id=str(job_id),
            status=profile.map_status(str(data.get("status") or "queued")),
            progress=progress_of(data.get("progress")) or 0,
            created_at=_int(data.get("created_at")),
            expires_at=_int(data.get("expires_at")),
            error_code=bounded(str(error.get("code") or "")),
            error_message=bounded(str(error.get("message") or "")),
            model=str(data.get("model") or ""),
            prompt=str(data.get("prompt") or ""),
            size=str(data.get("size") or ""),
            seconds=str(data.get("seconds") or ""),
            remixed_from=str(data.get("remixed_from_video_id") or ""),
            video_url=bounded(first_link(data, profile.video.url_fields)),
            completed_at=_int(data.get("completed_at")),
        )


@dataclass(frozen=True)
class VideoPage:
    """One page of ``GET /videos``."""

    videos: tuple[Video, ...]
    has_more: bool
    last_id: str | None


@dataclass(frozen=True)
class Polled:
    """A retrieved video and how long the provider asked us to wait before the next look."""

    video: Video
    poll_after: float | None = None  # seconds, from openai-poll-after-ms


class VideoClient:
    """Requests to one provider over one aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        profile: Profile,
        api_key: Secret | None,
        *,
        timeout: float = 120.0,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self._auth = {profile.auth_header: profile.auth_value(api_key.value)} if api_key else {}
        self._secret = api_key.value if api_key else ""
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout)

    async def create(self, job: Job, idempotency_key: str) -> Video:
        """``POST /videos`` as multipart form: the job's fields and its image as a file part.

        A remix (``job.remix_of`` set) goes to ``POST /videos/{id}/remix`` with its prompt.
        """
        headers = {"Idempotency-Key": idempotency_key}
        if job.remix_of:
            body = {"prompt": job.fields["prompt"]}
            path = f"{job_path(job.remix_of)}/remix"
            data = await self._json("POST", path, json=body, headers=headers)
            return Video.from_json(data, self.profile)
        with _open_image(job) as image:
            form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
            for name, value in job.fields.items():
                form.add_field(self.profile.field_names.get(name, name), value)
            if job.image is not None and image is not None:
                form.add_field(
                    self.profile.image_field,
                    image,
                    filename=job.image.filename,
                    content_type=job.image.content_type,
                )
            data = await self._json("POST", "/videos", data=form, headers=headers)
        return Video.from_json(data, self.profile)

    async def retrieve(self, job_id: str) -> Video:
        """``GET /videos/{id}``."""
        data = await self._json("GET", job_path(job_id))
        return Video.from_json(data, self.profile)

    async def poll(self, job_id: str) -> Polled:
        """``GET /videos/{id}``, keeping the provider's ``openai-poll-after-ms`` hint."""
        data, headers = await self._json_and_headers("GET", job_path(job_id))
        return Polled(Video.from_json(data, self.profile), _poll_after(headers))

    async def list_videos(self, *, after: str | None = None, limit: int = 100) -> VideoPage:
        """``GET /videos``, newest first."""
        params = {"limit": str(limit), "order": "desc"}
        if after:
            params["after"] = after
        data = await self._json("GET", "/videos", params=params)
        items = data.get("data")
        if not isinstance(items, list):
            # Not a page at all (a relay's error in a 200, a CDN page): "no jobs" would
            # make a lost create look absent and get it sent, and paid for, twice.
            raise BadResponseError(
                f"the provider's list answer has no 'data' list: {excerpt(json.dumps(data))}"
            )
        videos = tuple(Video.from_json(item, self.profile) for item in items)
        last = data.get("last_id") or (videos[-1].id if videos else None)
        return VideoPage(videos, bool(data.get("has_more")), last)

    def can_download(self, variant: str = "video", link: str = "") -> bool:
        """Whether ``variant`` can be fetched now: from ``link`` (the video's, from the
        retrieve answer), else from the content endpoint when the profile has one."""
        return bool(variant == "video" and link) or self.profile.video.content_endpoint

    async def download(
        self, job_id: str, dest: Path, *, variant: str = "video", link: str = ""
    ) -> Download:
        """Stream the video (or a preview) into ``dest`` via a temporary file.

        The video comes from ``link`` when known (another origin never gets the key), else
        from ``GET /videos/{id}/content``. A JSON answer with a link is followed once. The
        file appears under its final name only when whole, so a crash never leaves a
        truncated video where a finished one is expected; what an earlier, cut try left
        is resumed with a Range request (see :mod:`batchgen.provider.transfer`).
        """
        if not self.can_download(variant, link):
            raise RejectedError(f"the {self.profile.name} profile has no content endpoint")
        url, params = link, {}
        if not (variant == "video" and link):
            url = f"{job_path(job_id)}/content"
            params = {} if variant == "video" else {"variant": variant}
        for hop in range(2):
            async with self._resuming_get(url, params, dest) as response:
                if response.content_type != "application/json":
                    return await write_body(response, dest)
                url, params = await self._json_link(response, followed=hop > 0), {}
        raise AssertionError("unreachable: the second JSON answer raised")

    @asynccontextmanager
    async def _resuming_get(
        self, url: str, params: Mapping[str, str], dest: Path
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``GET url`` asking for the rest of what an earlier try left of ``dest``; a 416
        (the part is already whole, or stale) is asked again from byte 0, without Range."""
        for headers in (resume_headers(dest), {}):
            async with self._request(
                "GET", url, params=params, timeout=self._stream_timeout, headers=headers
            ) as response:
                if headers and response.status == RANGE_NOT_SATISFIABLE:
                    discard_part(dest)
                    continue
                await self._raise_for_status(response)
                yield response
                return

    async def _json_link(self, response: aiohttp.ClientResponse, *, followed: bool) -> str:
        """The link in a JSON "download" answer (some resellers send one instead of the file)."""
        body = await self._read_body(response)
        with suppress(ValueError):
            data = json.loads(body)
            if not followed and isinstance(data, dict):
                link = first_link(data, self.profile.video.json_link_fields)
                if link:
                    return link
        raise RejectedError(
            f"the download answer is JSON, not a video: {excerpt(body)}", status=response.status
        )

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data, _headers = await self._json_and_headers(method, path, **kwargs)
        return data

    async def _json_and_headers(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        async with self._request(method, path, **kwargs) as response:
            await self._raise_for_status(response)
            body = await self._read_body(response)
            headers = response.headers
        try:
            data = json.loads(body)
        except ValueError:
            raise BadResponseError(
                f"HTTP {response.status} answer is not JSON: {excerpt(body)}",
                status=response.status,
            ) from None
        if not isinstance(data, dict):
            raise BadResponseError(f"unexpected answer: {excerpt(body)}", status=response.status)
        return data, headers

    async def _read_body(self, response: aiohttp.ClientResponse) -> str:
        """The body as text, with the key blanked out *before* anything quotes or cuts it:
        a relay that echoes the Authorization header ("invalid token: Bearer sk-…") would
        otherwise put the key into error messages and so into the results file."""
        text = (await response.read()).decode("utf-8", errors="replace")
        return text.replace(self._secret, "***") if self._secret else text

    async def _raise_for_status(self, response: aiohttp.ClientResponse) -> None:
        if response.status >= 300:
            raise _status_error(response, await self._read_body(response), self.profile)

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request to ``path`` under the base URL (or to an absolute URL), following GET
        redirects by hand: the key goes only to the base URL's origin, never elsewhere."""
        url = path if _is_absolute(path) else self.base_url + path
        origin = url_origin(self.base_url)
        for _hop in range(MAX_REDIRECTS + 1):
            auth = self._auth if url_origin(url) == origin else {}
            try:
                response = await self._session.request(
                    method,
                    url,
                    headers={**auth, **(headers or {})},
                    allow_redirects=False,
                    timeout=timeout or self._timeout,
                    **kwargs,
                )
            except Exception as exc:
                raise _transport_error(exc, self._timeout.total) from None
            if response.status not in (301, 302, 303, 307, 308) or method != "GET":
                try:
                    yield response
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    raise _transport_error(exc, self._timeout.total) from None
                finally:
                    response.release()
                return
            url = urljoin(url, response.headers.get("Location", ""))
            kwargs.pop("params", None)  # the Location carries its own query
            response.release()
        raise RejectedError(f"too many redirects from {self.base_url}{path}")


def job_path(job_id: str) -> str:
    """``/videos/{id}`` with the id quoted: relay ids hold ``:`` (``sora-2:task_…``) and
    LiteLLM's are base64 (``+``, ``/``, ``=``), which must not split or end the path."""
    return f"/videos/{quote(job_id, safe=':')}"


def _is_absolute(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def _open_image(job: Job) -> AbstractContextManager[IO[bytes] | None]:
    """The image file opened for streaming (aiohttp reads it in chunks), or nothing."""
    return nullcontext() if job.image is None else job.image.path.open("rb")


def _status_error(response: aiohttp.ClientResponse, body: str, profile: Profile) -> ApiError:
    """The error for an HTTP status of 300 or more, classified by what it means for money.

    The profile says which statuses made nothing (retry), which may have made a job (a
    gateway that timed out after the request reached the provider: look it up, never
    resend blindly) and how "no such job" looks; a 429 always made nothing.
    """
    message, code = _error_details(body)
    status = response.status
    text = f"HTTP {status}: {message}"
    if status == 429:
        return RateLimitedError(text, status=429, code=code, retry_after=_retry_after(response))
    if profile.not_found.matches(status, code):
        return NotFoundError(text, status=status, code=code)
    meaning = profile.http.of(status)
    if meaning == NOTHING_MADE:
        wait = _retry_after(response)
        return RetryableError(text, status=status, code=code, retry_after=wait)
    if meaning == MAYBE_MADE:
        return OutcomeUnknownError(
            f"{text} (the request reached the provider: a job may exist)",
            status=status,
            code=code,
            retry_after=_retry_after(response),
        )
    return RejectedError(text, status=status, code=code)


def _error_details(body: str) -> tuple[str, str]:
    """The provider's own error message and code (OpenAI's, new-api's flat one, LiteLLM's),
    or a short excerpt of whatever it sent (an HTML page): see :mod:`.answers`."""
    return error_details(body)


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    A proxy that renames upstream headers (LiteLLM's ``llm_provider-retry-after``) still
    says when to come back: the renamed header counts too.
    """
    millis = response.headers.get("retry-after-ms")
    with suppress(ValueError, TypeError):
        if millis is not None:
            return max(0.0, float(millis) / 1000)
    names = ("Retry-After", "llm_provider-retry-after")
    value = next((response.headers[n] for n in names if n in response.headers), None)
    if value is None:
        return None
    with suppress(ValueError):
        return max(0.0, float(value))
    with suppress(TypeError, ValueError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _poll_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``openai-poll-after-ms``; None when absent or not a number."""
    with suppress(ValueError, TypeError):
        raw = headers.get(POLL_AFTER_HEADER)
        if raw is not None:
            return max(0.0, float(raw) / 1000)
    return None


def _transport_error(exc: BaseException, timeout: float | None) -> ApiError:
    """Classify a failure below HTTP: never sent (safe to retry) or sent but unanswered."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return ApiError(f"TLS error: {exc}")  # a certificate problem will not fix itself
    if isinstance(exc, aiohttp.ClientConnectorError):
        return RetryableError(f"cannot connect: {exc.os_error.strerror or exc}")
    if isinstance(exc, asyncio.TimeoutError):
        return OutcomeUnknownError(f"no answer within {timeout:g} s" if timeout else "timed out")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return OutcomeUnknownError(f"connection lost: {type(exc).__name__}: {exc}")
    raise exc


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None
