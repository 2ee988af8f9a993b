"""The HTTP client for the ``/videos`` endpoints of an OpenAI-compatible provider.

One method per endpoint; each turns the provider's answer into a :class:`Video` or into
one of batchgen's :mod:`~batchgen.errors`, classified by what can be done about it:
retryable (429, 5xx, transport trouble), final (other 4xx), or outcome unknown (the
request left but its answer was lost: the job may exist). Pacing and retries are the
caller's business (see :mod:`batchgen.provider.retry`); this module makes single requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
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
from urllib.parse import urljoin, urlsplit

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
from batchgen.provider.config import Secret

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
MAX_REDIRECTS = 5
EXCERPT_CHARS = 160
#: Longest provider text (an error's message or code) kept whole: the rest is cut, so a
#: provider cannot grow the results file (and every later line of the row) without limit.
STORED_CHARS = 2000
CHUNK_BYTES = 256 * 1024
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

    @classmethod
    def from_json(cls, data: Mapping[str, Any], profile: Profile) -> Video:
        """Read a VideoResource; raises :class:`BadResponseError` when it has no id."""
        job_id = data.get("id") or data.get("task_id")
        if not isinstance(job_id, (str, int)) or job_id == "":
            raise BadResponseError(
                f"the provider's answer has no job id: {_excerpt(json.dumps(data))}"
            )
        raw_error = data.get("error")
        error: Mapping[str, Any] = raw_error if isinstance(raw_error, Mapping) else {}
        return cls(
            id=str(job_id),
            status=profile.map_status(str(data.get("status") or "queued")),
            progress=_int(data.get("progress")) or 0,
            created_at=_int(data.get("created_at")),
            expires_at=_int(data.get("expires_at")),
            error_code=_bounded(str(error.get("code") or "")),
            error_message=_bounded(str(error.get("message") or "")),
            model=str(data.get("model") or ""),
            prompt=str(data.get("prompt") or ""),
            size=str(data.get("size") or ""),
            seconds=str(data.get("seconds") or ""),
            remixed_from=str(data.get("remixed_from_video_id") or ""),
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


@dataclass(frozen=True)
class Download:
    """A finished download: where it is, how big, and its sha256."""

    path: Path
    size_bytes: int
    sha256: str


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
            path = f"/videos/{job.remix_of}/remix"
            data = await self._json("POST", path, json=body, headers=headers)
            return Video.from_json(data, self.profile)
        with _open_image(job) as image:
            form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
            for name, value in job.fields.items():
                form.add_field(name, value)
            if job.image is not None and image is not None:
                form.add_field(
                    "input_reference",
                    image,
                    filename=job.image.filename,
                    content_type=job.image.content_type,
                )
            data = await self._json("POST", "/videos", data=form, headers=headers)
        return Video.from_json(data, self.profile)

    async def retrieve(self, job_id: str) -> Video:
        """``GET /videos/{id}``."""
        data = await self._json("GET", f"/videos/{job_id}")
        return Video.from_json(data, self.profile)

    async def poll(self, job_id: str) -> Polled:
        """``GET /videos/{id}``, keeping the provider's ``openai-poll-after-ms`` hint."""
        data, headers = await self._json_and_headers("GET", f"/videos/{job_id}")
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
                f"the provider's list answer has no 'data' list: {_excerpt(json.dumps(data))}"
            )
        videos = tuple(Video.from_json(item, self.profile) for item in items)
        last = data.get("last_id") or (videos[-1].id if videos else None)
        return VideoPage(videos, bool(data.get("has_more")), last)

    async def download(self, job_id: str, dest: Path, *, variant: str = "video") -> Download:
        """Stream ``GET /videos/{id}/content`` into ``dest`` via a temporary file.

        The file appears under its final name only when whole, so a crash never leaves a
        truncated video where a finished one is expected.
        """
        partial = dest.with_name(dest.name + ".part")
        params = {} if variant == "video" else {"variant": variant}
        digest, size = hashlib.sha256(), 0
        try:
            async with self._request(
                "GET", f"/videos/{job_id}/content", params=params, timeout=self._stream_timeout
            ) as response:
                await self._raise_for_status(response)
                with partial.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            partial.replace(dest)
        finally:
            with suppress(FileNotFoundError):
                partial.unlink()
        return Download(dest, size, digest.hexdigest())

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
                f"HTTP {response.status} answer is not JSON: {_excerpt(body)}",
                status=response.status,
            ) from None
        if not isinstance(data, dict):
            raise BadResponseError(f"unexpected answer: {_excerpt(body)}", status=response.status)
        return data, headers

    async def _read_body(self, response: aiohttp.ClientResponse) -> str:
        """The body as text, with the key blanked out *before* anything quotes or cuts it:
        a relay that echoes the Authorization header ("invalid token: Bearer sk-…") would
        otherwise put the key into error messages and so into the results file."""
        text = (await response.read()).decode("utf-8", errors="replace")
        return text.replace(self._secret, "***") if self._secret else text

    async def _raise_for_status(self, response: aiohttp.ClientResponse) -> None:
        if response.status >= 300:
            raise _status_error(response, await self._read_body(response))

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
        """One request, following GET redirects by hand so the key never leaves its origin."""
        url = self.base_url + path
        origin = _origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            auth = self._auth if _origin(url) == origin else {}
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


def _open_image(job: Job) -> AbstractContextManager[IO[bytes] | None]:
    """The image file opened for streaming (aiohttp reads it in chunks), or nothing."""
    return nullcontext() if job.image is None else job.image.path.open("rb")


def _status_error(response: aiohttp.ClientResponse, body: str) -> ApiError:
    """The error for an HTTP status of 300 or more, classified by what can be done about it."""
    message, code = _error_details(body)
    text = f"HTTP {response.status}: {message}"
    if response.status == 429:
        return RateLimitedError(text, status=429, code=code, retry_after=_retry_after(response))
    if response.status in RETRYABLE_STATUSES:
        wait = _retry_after(response)
        return RetryableError(text, status=response.status, code=code, retry_after=wait)
    if response.status == 404:
        return NotFoundError(text, status=404, code=code)
    return RejectedError(text, status=response.status, code=code)


def _error_details(body: str) -> tuple[str, str]:
    """The provider's own error message and code, or a short excerpt of whatever it sent."""
    try:
        data = json.loads(body)
    except ValueError:
        return _excerpt(body), ""
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg") or json.dumps(error)
        return _bounded(str(message)), _bounded(str(error.get("code") or error.get("type") or ""))
    return _excerpt(str(error)), ""


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = response.headers.get("retry-after-ms")
    with suppress(ValueError, TypeError):
        if millis is not None:
            return max(0.0, float(millis) / 1000)
    value = response.headers.get("Retry-After")
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


def _excerpt(text: str) -> str:
    """A short, single-line, tag-free excerpt of a body, for an error message."""
    plain = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    plain = html.unescape(re.sub(r"<[^>]+>", " ", plain))
    plain = " ".join(plain.split())
    return plain if len(plain) <= EXCERPT_CHARS else plain[: EXCERPT_CHARS - 1] + "…"


def _bounded(text: str) -> str:
    """``text`` itself, or its first :data:`STORED_CHARS` characters and its full length."""
    if len(text) <= STORED_CHARS:
        return text
    return f"{text[:STORED_CHARS]}… (cut: {len(text):,} characters in all)"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None
