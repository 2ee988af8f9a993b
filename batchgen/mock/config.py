"""How the simulated provider behaves: :class:`MockConfig` and its seeded :class:`Faults`."""

from __future__ import annotations

from dataclasses import dataclass, field

from batchgen.profile import Profile
from batchgen.profile_files import load_profile

FAULT_ENDPOINTS = frozenset({"create", "retrieve", "list", "content"})
#: Fault names in the order their rates are stacked on one draw in [0, 1).
FAULT_NAMES = (
    "error_429", "error_500", "error_503", "html_502",
    "reset_after_create", "slow", "bad_json", "missing_id", "cut_stream",
)  # fmt: skip


@dataclass
class Faults:
    """Seeded fault injection: each rate is the probability that one request gets that fault.

    One number is drawn per request (on the endpoints listed) and the rates are stacked in
    :data:`FAULT_NAMES` order, so at most one fault hits a request and the rates should
    sum to at most 1.
    """

    seed: int = 0
    rate_limit_rpm: int | None = None
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
    content_delay: float = 0.0  # seconds after completion before content is served
    chunk_delay: float = 0.0  # seconds between chunks of a video: a slow CDN
    expired_status: int = 410  # content after expiry (some providers answer 404)
