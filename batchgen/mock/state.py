"""What the simulated provider holds: :class:`MockState` (what tests assert on), the
per-app machinery, and the keys under which an app keeps them."""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from batchgen.mock.config import STATUS_ENDPOINTS, MockConfig


class MockState:
    """What the server saw and holds; tests assert on it.

    ``clock`` (default :func:`time.time`) drives job progress, expiry and the rate window;
    a test may replace it to move time without sleeping.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.create_requests = 0
        self.jobs_created = 0
        self.created_by_idempotency_key: dict[str, int] = {}
        self.requests_by_endpoint: collections.Counter[str] = collections.Counter()
        # Bytes of video bodies sent, by job id: a resumed download sends only the rest.
        self.video_bytes_sent: collections.Counter[str] = collections.Counter()
        self.rate_limited_by_endpoint: collections.Counter[str] = collections.Counter()
        # When each job was retrieved (the state's clock): how often a client polls it.
        self.retrieved_at: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
        self.auth_headers_seen: list[str] = []
        # The Authorization header of every request for a video link (None: none was sent).
        self.cdn_auth_headers: list[str | None] = []
        self.clock: Callable[[], float] = time.time
        self.job_by_idempotency_key: dict[str, str] = {}

    @property
    def rate_limited(self) -> int:
        """Every 429 answered, whatever the endpoint."""
        return sum(self.rate_limited_by_endpoint.values())

    @property
    def status_rate_limited(self) -> int:
        """429s answered to status checks (retrieve and list), whatever drew them."""
        return sum(self.rate_limited_by_endpoint[name] for name in STATUS_ENDPOINTS)

    def job_count_by_prompt(self) -> collections.Counter[str]:
        """How many held jobs have each prompt (more than 1 for a row means it was paid twice)."""
        return collections.Counter(str(job["prompt"]) for job in self.jobs.values())

    def delete(self, job_id: str) -> None:
        """Forget a job, as a provider that lost it would: a later retrieve answers 404."""
        self.jobs.pop(job_id, None)
        for key, known in list(self.job_by_idempotency_key.items()):
            if known == job_id:
                del self.job_by_idempotency_key[key]


@dataclass
class Runtime:
    """Per-app mutable machinery that is not part of what tests assert on."""

    rng: random.Random
    # times of the requests counted in each rate window ("create", "status"), oldest first
    windows: collections.defaultdict[str, collections.deque[float]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )
    sequence: int = 0
    cdn_origin: str | None = None  # ``http://127.0.0.1:PORT`` of the CDN, once it listens


STATE_KEY = web.AppKey("batchgen_mock_state", MockState)
CONFIG_KEY = web.AppKey("batchgen_mock_config", MockConfig)
RUNTIME_KEY = web.AppKey("batchgen_mock_runtime", Runtime)
