"""The parts of a provider profile that describe how its API behaves, beyond what it accepts.

Each is a small frozen dataclass read from one section of the profile's YAML; the defaults
fit a relay behind Cloudflare (shared/reference/relays.md). Code asks these objects; it never
branches on a provider's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: What an HTTP status on a create means for money (see :meth:`HttpMeaning.of`).
NOTHING_MADE: Literal["nothing_made"] = "nothing_made"  # retry: nothing billable was made
MAYBE_MADE: Literal["maybe_made"] = "maybe_made"  # a job may exist: look it up, never resend
FINAL: Literal["final"] = "final"  # the provider said no for good
Meaning = Literal["nothing_made", "maybe_made", "final"]

DEFAULT_RETRY = (429, 502, 503, 521, 522, 523)
DEFAULT_MAYBE_MADE = (504, 520, 524)
DEFAULT_URL_FIELDS = ("video_url", "url", "metadata.url", "result_url")


@dataclass(frozen=True)
class HttpMeaning:
    """HTTP statuses by what they mean for a create that was sent."""

    retry: frozenset[int] = frozenset(DEFAULT_RETRY)
    maybe_made: frozenset[int] = frozenset(DEFAULT_MAYBE_MADE)

    def of(self, status: int) -> Meaning:
        """Retry (nothing was made), maybe made (look it up), or final (other 4xx/5xx)."""
        if status in self.retry:
            return NOTHING_MADE
        if status in self.maybe_made:
            return MAYBE_MADE
        return FINAL

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any]) -> HttpMeaning:
        return cls(
            retry=frozenset(int(s) for s in data.get("retry", DEFAULT_RETRY)),
            maybe_made=frozenset(int(s) for s in data.get("maybe_made", DEFAULT_MAYBE_MADE)),
        )


@dataclass(frozen=True)
class NotFound:
    """How "no such job" looks: a 404, or another status with one of these error codes."""

    statuses: frozenset[int] = frozenset({404})
    codes: frozenset[str] = frozenset()

    def matches(self, status: int | None, code: str) -> bool:
        """True when an answer with ``status`` and error ``code`` says the job does not exist."""
        return status in self.statuses or (bool(code) and code in self.codes)

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any]) -> NotFound:
        return cls(
            statuses=frozenset(int(s) for s in data.get("statuses", (404,))),
            codes=frozenset(str(c) for c in data.get("codes", ())),
        )


@dataclass(frozen=True)
class VideoLocation:
    """Where a finished job's video is, and which preview variants really exist."""

    url_fields: tuple[str, ...] = ()  # dotted paths in the retrieve answer, tried in order
    content_endpoint: bool = True  # GET /videos/{id}/content serves the file
    json_link_fields: tuple[str, ...] = ()  # a JSON "download" answer's link, tried in order
    previews: tuple[str, ...] = ("thumbnail", "spritesheet")
    # the content endpoint answers "not ready" for an unfinished job (new-api's proxy), so
    # fetching the video of a job surely done can stand for its status check
    content_says_not_ready: bool = False

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any]) -> VideoLocation:
        return cls(
            url_fields=tuple(str(f) for f in data.get("url_fields", ())),
            content_endpoint=bool(data.get("content_endpoint", True)),
            json_link_fields=tuple(str(f) for f in data.get("json_link_fields", ())),
            previews=tuple(str(v) for v in data.get("previews", ("thumbnail", "spritesheet"))),
            content_says_not_ready=bool(data.get("content_says_not_ready", False)),
        )


@dataclass(frozen=True)
class Simulated:
    """How the simulated API serves this profile (``run --mock``, ``serve-mock --flavor``):
    the provider's habits, faults included, so that tests meet what the field does."""

    id_prefix: str = "video_"
    id_length: int = 24
    status_words: Mapping[str, str] = field(default_factory=dict)  # ours -> the provider's
    progress: Literal["number", "percent"] = "number"
    error_shape: Literal["openai", "flat"] = "openai"
    rate_limit_message: str = "Rate limit reached"
    retry_after: bool = True  # its 429 says when to come back
    not_found_status: int = 404
    not_found_code: str = "not_found"
    video_url: Literal["none", "same", "cdn"] = "none"  # a link in the retrieve answer
    listing: bool = True
    task_id: bool = False  # answers repeat the id as ``task_id`` (new-api)
    not_ready_status: int | None = None  # content of an unfinished job; None: not_ready's
    not_ready_message: str | None = None  # its message; ``{status}``: the provider's word

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], *, can_list: bool) -> Simulated:
        not_found = data.get("not_found") or {}
        not_ready = data.get("not_ready") or {}
        return cls(
            id_prefix=str(data.get("id_prefix", "video_")),
            id_length=int(data.get("id_length", 24)),
            status_words={str(k): str(v) for k, v in (data.get("status_words") or {}).items()},
            progress="percent" if data.get("progress") == "percent" else "number",
            error_shape="flat" if data.get("error_shape") == "flat" else "openai",
            rate_limit_message=str(data.get("rate_limit_message", "Rate limit reached")),
            retry_after=bool(data.get("retry_after", True)),
            not_found_status=int(not_found.get("status", 404)),
            not_found_code=str(not_found.get("code", "not_found")),
            video_url=_video_url(data.get("video_url")),
            listing=can_list,
            task_id=bool(data.get("task_id", False)),
            not_ready_status=int(not_ready["status"]) if "status" in not_ready else None,
            not_ready_message=str(not_ready["message"]) if "message" in not_ready else None,
        )


def _video_url(value: Any) -> Literal["none", "same", "cdn"]:
    if value in ("same", "cdn"):
        return "same" if value == "same" else "cdn"
    return "none"
