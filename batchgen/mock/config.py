"""How the simulated provider behaves: :class:`MockConfig` and its seeded :class:`Faults`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from batchgen.profile import Profile
from batchgen.profile_files import load_profile

FAULT_ENDPOINTS = frozenset({"create", "retrieve", "list", "content"})
#: Status checks: what a relay's limit on GETs counts (one job, or a page of the list).
STATUS_ENDPOINTS = frozenset({"retrieve", "list"})
#: Fault names in the order their rates are stacked on one draw in [0, 1).
FAULT_NAMES = (
    "error_429", "error_500", "error_503", "html_502",
    "reset_after_create", "slow", "bad_json", "missing_id", "cut_stream",
    "html_520", "html_522", "html_524",
)  # fmt: skip


@dataclass
class Faults:
    """Seeded fault injection: each rate is the probability that one request gets that fault.

    One number is drawn per request (on the endpoints listed) and the rates are stacked in
    :data:`FAULT_NAMES` order, so at most one fault hits a request and the rates should
    sum to at most 1.
    """

    seed: int = 0
    rate_limit_rpm: int | None = None  # creates in any ``rate_window``; beyond: 429
    # Status checks (STATUS_ENDPOINTS) in any ``rate_window``, counted apart from creates,
    # as relays limit GETs per key or IP on their own; beyond: 429.
    status_rate_limit_rpm: int | None = None
    rate_window: float = 60.0  # seconds of the sliding windows both limits count in
    error_429: float = 0.0
    retry_after_seconds: float = 1.0
    error_500: float = 0.0
    error_503: float = 0.0
    html_502: float = 0.0
    reset_after_create: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 30.0
    bad_json: float = 0.0
    missing_id: float = 0.0
    cut_stream: float = 0.0  # content: the connection drops halfway through the video
    # Cloudflare's pages in front of a relay (appended last so older seeds draw the same):
    html_520: float = 0.0  # the job was created, the answer garbled
    html_522: float = 0.0  # the relay was never reached: nothing created
    html_524: float = 0.0  # the job was created, the answer lost to a timeout
    endpoints: frozenset[str] = frozenset({"create"})


def common_faults(rate: float, seed: int = 0) -> Faults:
    """``rate`` of creates answered 429, 500, 503 or an HTML 502, in equal shares."""
    share = rate / 4
    return Faults(seed=seed, error_429=share, error_500=share, error_503=share, html_502=share)


def _openai_profile() -> Profile:
    return load_profile("openai")


@dataclass
class MockConfig:
    """How the simulated provider behaves: profile, timing, seeded faults, relay quirks."""

    profile: Profile = field(default_factory=_openai_profile)
    faults: Faults = field(default_factory=Faults)
    latency: float = 0.0
    job_duration: float = 0.0
    # Spread durations: each job's drawn uniformly in [job_duration_min, job_duration], seeded
    # by the faults' seed and the job's sequence, so a run is reproducible (None: all equal).
    job_duration_min: float | None = None
    fail_marker: str = "[fail]"
    # No real provider honours Idempotency-Key (shared/reference/relays.md), so neither does
    # the simulated one unless a test asks: job counts are what a provider would bill.
    idempotency: bool = False
    listing: bool = True
    status_words: dict[str, str] = field(default_factory=dict)
    id_prefix: str = "video_"
    expires_after: float | None = None
    video_bytes: int = 64 * 1024
    require_auth: bool = True
    # Polling and downloading, as providers differ:
    poll_after_ms: int | None = None  # sent as openai-poll-after-ms while a job is not final
    not_ready_status: int = 409  # content of an unfinished job (some relays answer 400)
    not_ready_message: str | None = None  # its message ({status}: the provider's word)
    content_delay: float = 0.0  # seconds after completion before content is served
    chunk_delay: float = 0.0  # seconds between chunks of a video: a slow CDN
    ranges: bool = True  # video bodies honour Range: bytes=N- (206); False: always 200, whole
    expired_status: int = 410  # content after expiry (some providers answer 404)
    # The provider's flavour (see :meth:`for_profile`); the defaults are OpenAI's.
    id_length: int = 24
    progress_format: Literal["number", "percent"] = "number"  # 100 or "100%"
    task_id: bool = False  # answers repeat the id as ``task_id``, as new-api's do
    error_shape: Literal["openai", "flat"] = "openai"
    rate_limit_message: str | None = None  # None: OpenAI's own messages
    retry_after: bool = True  # its 429 carries Retry-After / retry-after-ms
    not_found_status: int = 404
    not_found_code: str = "video_not_found"
    refresh_seconds: float = 0.0  # retrieve shows the job as of the last refresh tick
    content_endpoint: bool = True  # GET /v1/videos/{id}/content exists
    download_link: bool = False  # GET /v1/videos/{id}/download answers JSON {video_url, url}
    video_url: Literal["none", "same", "cdn"] = "none"  # a link in the retrieve answer
    previews: tuple[str, ...] = ("thumbnail", "spritesheet")  # others: the video is sent
    max_running: int | None = None  # jobs a key may have running; beyond: 429 (app relays)

    @classmethod
    def for_profile(cls, profile: Profile, **overrides: Any) -> MockConfig:
        """The simulated API as ``profile``'s provider serves it; ``overrides`` win.

        Everything comes from the profile's data (``simulated``, ``can_list``,
        ``refresh_seconds``, ``video``, ``not_ready``), never from its name.
        """
        flavour = profile.simulated
        values: dict[str, Any] = {
            "profile": profile,
            "listing": profile.can_list and flavour.listing,
            "status_words": dict(flavour.status_words),
            "id_prefix": flavour.id_prefix,
            "id_length": flavour.id_length,
            "progress_format": flavour.progress,
            "task_id": flavour.task_id,
            "error_shape": flavour.error_shape,
            "rate_limit_message": flavour.rate_limit_message,
            "retry_after": flavour.retry_after,
            "not_found_status": flavour.not_found_status,
            "not_found_code": flavour.not_found_code,
            "refresh_seconds": profile.refresh_seconds,
            "content_endpoint": profile.video.content_endpoint,
            "download_link": bool(profile.video.json_link_fields),
            "video_url": flavour.video_url,
            "previews": profile.video.previews,
            "not_ready_status": flavour.not_ready_status or max(profile.not_ready, default=409),
            "not_ready_message": flavour.not_ready_message,
            "max_running": profile.max_running,
        }
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown MockConfig setting(s): {', '.join(sorted(unknown))}")
        return cls(**{**values, **overrides})
