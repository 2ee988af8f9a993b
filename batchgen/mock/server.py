"""A simulated OpenAI-compatible ``/videos`` API, for tests, benchmarks and ``run --mock``.

It validates requests as strictly as the real provider does (using a :class:`Profile`),
runs jobs through ``queued -> in_progress -> completed`` on a clock, serves fake MP4s and
previews, and injects seeded, reproducible faults: 429s, 5xx, CDN HTML pages, dropped
connections after a job was created, slow answers, broken JSON. :class:`MockState`
records what it saw so tests can assert that nothing was paid for twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import hashlib
import io
import ipaddress
import json
import math
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from PIL import Image

from batchgen.profile import Profile, load_profile

FAULT_ENDPOINTS = frozenset({"create", "retrieve", "list", "content"})
#: Fault names in the order their rates are stacked on one draw in [0, 1).
FAULT_NAMES = (
    "error_429", "error_500", "error_503", "html_502",
    "reset_after_create", "slow", "bad_json", "missing_id", "cut_stream",
)  # fmt: skip
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
CORE_FIELDS = ("model", "prompt", "seconds", "size")
RATE_WINDOW = 60.0
CHUNK_BYTES = 16 * 1024
THUMB_WIDTH = 160
# A real MP4 starts with an ftyp box; clients may sniff it to check what they downloaded.
FTYP_BOX = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
CDN_502_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"
)


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
    """How the simulated provider behaves (see the module docstring)."""

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
        self.rate_limited = 0
        self.auth_headers_seen: list[str] = []
        self.clock: Callable[[], float] = time.time
        self.job_by_idempotency_key: dict[str, str] = {}

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
class _Runtime:
    """Per-app mutable machinery that is not part of what tests assert on."""

    rng: random.Random
    window: collections.deque[float] = field(default_factory=collections.deque)
    sequence: int = 0


STATE_KEY = web.AppKey("batchgen_mock_state", MockState)
CONFIG_KEY = web.AppKey("batchgen_mock_config", MockConfig)
RUNTIME_KEY = web.AppKey("batchgen_mock_runtime", _Runtime)
_FAULT_KEY = "batchgen_mock_fault"
# The fault drawn for the request being handled (each request runs in its own task), for
# faults a handler applies itself, such as cutting a stream halfway.
_CURRENT_FAULT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "batchgen_mock_current_fault", default=None
)


class _ApiFailure(Exception):
    """An error answer in OpenAI's shape, raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind = kind
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return web.json_response({"error": body}, status=self.status, headers=self.headers)


# --------------------------------------------------------------------------- app and middleware


def create_app(config: MockConfig, state: MockState | None = None) -> web.Application:
    """The simulated API as an aiohttp app; its state is ``app[STATE_KEY]``."""
    app = web.Application(middlewares=[_middleware], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state if state is not None else MockState()
    app[CONFIG_KEY] = config
    app[RUNTIME_KEY] = _Runtime(rng=random.Random(config.faults.seed))
    routes = [
        web.post("/v1/videos", _create, name="create"),
        web.get("/v1/videos", _list, name="list", allow_head=False),
        web.get("/v1/videos/{video_id}", _retrieve, name="retrieve", allow_head=False),
        web.delete("/v1/videos/{video_id}", _delete, name="delete"),
        web.get("/v1/videos/{video_id}/content", _content, name="content", allow_head=False),
        web.post("/v1/videos/{video_id}/remix", _remix, name="remix"),
    ]
    app.add_routes(routes)
    return app


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Bookkeeping, latency, auth, rate limit and faults around every endpoint."""
    endpoint = request.match_info.route.name or "unknown"
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    state.requests_by_endpoint[endpoint] += 1
    if endpoint == "create":
        state.create_requests += 1
    if config.latency > 0:
        await asyncio.sleep(config.latency)
    try:
        _check_auth(request, state, config)
        if endpoint == "create":
            _check_rate_window(request.app)
        fault = _draw_fault(request.app, endpoint)
        _CURRENT_FAULT.set(fault)
        early = _early_fault(fault, config)
        if early is not None:
            return early
        response = await handler(request)
    except _ApiFailure as failure:
        if failure.status == 429:
            state.rate_limited += 1
        return failure.response()
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return _invalid_url(request).response()
    return await _late_fault(request, fault, config, response)


def _check_auth(request: web.Request, state: MockState, config: MockConfig) -> None:
    profile = config.profile
    raw = request.headers.get(profile.auth_header)
    if raw is not None:
        state.auth_headers_seen.append(raw)
    if not config.require_auth:
        return
    prefix = f"{profile.auth_scheme} " if profile.auth_scheme else ""
    if raw is None or not raw.startswith(prefix) or not raw[len(prefix) :].strip():
        raise _ApiFailure(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            f"{profile.auth_header} header using {profile.auth_scheme or 'bare'} auth.",
            code="invalid_api_key",
        )


def _check_rate_window(app: web.Application) -> None:
    """A sliding 60 s window over creates: beyond ``rate_limit_rpm`` answer 429."""
    limit = app[CONFIG_KEY].faults.rate_limit_rpm
    if limit is None:
        return
    now, window = app[STATE_KEY].clock(), app[RUNTIME_KEY].window
    while window and window[0] <= now - RATE_WINDOW:
        window.popleft()
    if len(window) < limit:
        window.append(now)
        return
    wait = window[0] + RATE_WINDOW - now
    raise _rate_limited(
        f"Rate limit reached: {limit} requests per minute.",
        retry_after=str(max(1, math.ceil(wait))),
        retry_after_ms=max(1, math.ceil(wait * 1000)),
    )


def _rate_limited(message: str, *, retry_after: str, retry_after_ms: int) -> _ApiFailure:
    headers = {"Retry-After": retry_after, "retry-after-ms": str(retry_after_ms)}
    return _ApiFailure(429, message, code="rate_limit_exceeded", kind="requests", headers=headers)


def _draw_fault(app: web.Application, endpoint: str) -> str | None:
    """One seeded draw per request on a faulted endpoint; the rates are stacked on it."""
    faults = app[CONFIG_KEY].faults
    if endpoint not in faults.endpoints:
        return None
    draw, edge = app[RUNTIME_KEY].rng.random(), 0.0
    for name in FAULT_NAMES:
        edge += float(getattr(faults, name))
        if draw < edge:
            return name
    return None


def _early_fault(fault: str | None, config: MockConfig) -> web.Response | None:
    """Faults answered before the handler runs, so no job is created."""
    if fault == "error_429":
        seconds = config.faults.retry_after_seconds
        raise _rate_limited(
            "Rate limit reached for requests.",
            retry_after=f"{seconds:g}",
            retry_after_ms=max(0, round(seconds * 1000)),
        )
    if fault == "error_500":
        message = "The server had an error while processing your request. Sorry about that!"
        raise _ApiFailure(500, message, kind="server_error")
    if fault == "error_503":
        message = "The engine is currently overloaded, please try again later."
        raise _ApiFailure(503, message, kind="server_error", code="service_unavailable")
    if fault == "html_502":
        return web.Response(status=502, text=CDN_502_PAGE, content_type="text/html")
    if fault == "bad_json":
        # Labelled JSON but not JSON: a client must not trust the content type.
        body = "<!DOCTYPE html><html><body>upstream returned an invalid response</body></html>"
        return web.Response(status=200, text=body, content_type="application/json")
    if fault == "missing_id":
        return web.json_response({"object": "video", "status": "queued", "progress": 0})
    return None


async def _late_fault(
    request: web.Request, fault: str | None, config: MockConfig, response: web.StreamResponse
) -> web.StreamResponse:
    """Faults applied after the handler ran (for a create: after the job exists)."""
    if fault == "reset_after_create":
        _drop_connection(request)
    elif fault == "slow":
        await asyncio.sleep(config.faults.slow_seconds)
    return response


def _drop_connection(request: web.Request) -> None:
    """Close the socket without answering: the client sees a disconnect, not a status."""
    transport = request.transport
    if transport is not None:
        # aiohttp then fails to write the response and drops it quietly (ConnectionError).
        transport.abort()


def _invalid_url(request: web.Request) -> _ApiFailure:
    message = f"Invalid URL ({request.method} {request.path})"
    return _ApiFailure(404, message)


# --------------------------------------------------------------------------- job lifecycle


def _new_job(app: web.Application, fields: Mapping[str, str], remixed_from: str | None) -> str:
    state, config, runtime = app[STATE_KEY], app[CONFIG_KEY], app[RUNTIME_KEY]
    runtime.sequence += 1
    digest = hashlib.sha256(f"{config.faults.seed}:{runtime.sequence}".encode()).hexdigest()
    job_id = f"{config.id_prefix}{digest[:24]}"
    now = state.clock()
    state.jobs[job_id] = {
        "id": job_id, "object": "video", "model": fields["model"], "status": "queued",
        "progress": 0, "created_at": int(now), "completed_at": None, "expires_at": None,
        "prompt": fields["prompt"], "size": fields["size"], "seconds": fields["seconds"],
        "remixed_from_video_id": remixed_from, "error": None,
        "_started": now, "_sequence": runtime.sequence, "_finished": None,
        "_fields": dict(fields),
    }  # fmt: skip
    state.jobs_created += 1
    return job_id


def _advance(job: dict[str, Any], config: MockConfig, now: float) -> None:
    """Move a job along its lifecycle as seen at ``now``; progress rises linearly."""
    if job["status"] in ("completed", "failed"):
        return
    duration = config.job_duration
    elapsed = now - float(job["_started"])
    if duration > 0 and elapsed < duration:
        job["progress"] = min(99, int(100 * elapsed / duration))
        job["status"] = "in_progress" if job["progress"] > 0 else "queued"
        return
    # job_duration 0: completed at the first look after the create answered.
    _finish(job, config, float(job["_started"]) + duration if duration > 0 else now)


def _finish(job: dict[str, Any], config: MockConfig, finished: float) -> None:
    job["_finished"] = finished
    job["completed_at"] = int(finished)
    if config.fail_marker and config.fail_marker in str(job["prompt"]):
        job["status"] = "failed"
        job["error"] = {
            "code": "moderation_blocked",
            "message": "Your request was blocked by our moderation system.",
        }
        return
    job["status"], job["progress"] = "completed", 100
    job["expires_at"] = int(finished + _lifetime(config))


def _lifetime(config: MockConfig) -> float:
    return 3600.0 if config.expires_after is None else config.expires_after


def _is_expired(job: dict[str, Any], config: MockConfig, now: float) -> bool:
    finished = job["_finished"]
    return finished is not None and now >= float(finished) + _lifetime(config)


def _view(job: dict[str, Any], config: MockConfig) -> dict[str, Any]:
    """The public VideoResource, with the status in the provider's words."""
    public = {key: value for key, value in job.items() if not key.startswith("_")}
    public["status"] = config.status_words.get(job["status"], job["status"])
    return public


def _lookup(request: web.Request) -> dict[str, Any]:
    """The job named in the path, advanced to now, or a 404."""
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    job_id = request.match_info["video_id"]
    job = state.jobs.get(job_id)
    if job is None:
        raise _bad("video_id", "video_not_found", f"Video with id '{job_id}' not found.", 404)
    _advance(job, config, state.clock())
    return job


# --------------------------------------------------------------------------- handlers


async def _create(request: web.Request) -> web.Response:
    """``POST /v1/videos``: validate, honour Idempotency-Key, create a queued job."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    raw, upload = await _read_body(request)
    fields = _validate_create(raw, config.profile)
    if upload is not None:
        _validate_upload(upload, fields["size"])
    job_id = _idempotent_create(request, lambda: _new_job(request.app, fields, None))
    job = state.jobs[job_id]
    if upload is not None and "_look" not in job:
        job["_look"] = _small_copy(upload.data)  # previews look like the reference image
    return web.json_response(_view(job, config))


def _idempotent_create(request: web.Request, make: Callable[[], str]) -> str:
    """Reuse the job an Idempotency-Key already created, else make one and remember it."""
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    key = request.headers.get("Idempotency-Key")
    if key and config.idempotency:
        known = state.job_by_idempotency_key.get(key)
        if known is not None and known in state.jobs:
            return known
    job_id = make()
    if key:
        state.created_by_idempotency_key[key] = state.created_by_idempotency_key.get(key, 0) + 1
        state.job_by_idempotency_key[key] = job_id
    return job_id


async def _list(request: web.Request) -> web.Response:
    """``GET /v1/videos``: a page of jobs, newest first unless ``order=asc``."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    if not config.listing:
        raise _invalid_url(request)
    limit, order, after = _list_params(request)
    now = state.clock()
    for job in state.jobs.values():
        _advance(job, config, now)
    ordered = sorted(state.jobs.values(), key=lambda j: (j["created_at"], j["_sequence"]))
    if order == "desc":
        ordered.reverse()
    ids = [job["id"] for job in ordered]
    if after is not None:
        if after not in ids:
            raise _bad("after", "invalid_value", f"Invalid 'after': no video with id '{after}'.")
        ordered = ordered[ids.index(after) + 1 :]
    page = [_view(job, config) for job in ordered[:limit]]
    return web.json_response({
        "object": "list", "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(ordered) > limit,
    })  # fmt: skip


def _list_params(request: web.Request) -> tuple[int, str, str | None]:
    query = request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = -1
    if not 0 <= limit <= 100:
        raise _bad("limit", "invalid_value", "Invalid 'limit': expected an integer from 0 to 100.")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _invalid_value("order", order, ("asc", "desc"))
    return limit, order, query.get("after")


async def _retrieve(request: web.Request) -> web.Response:
    """``GET /v1/videos/{id}``, with ``openai-poll-after-ms`` while the job runs (if set)."""
    config = request.app[CONFIG_KEY]
    job = _lookup(request)
    headers = {}
    if config.poll_after_ms is not None and job["status"] not in ("completed", "failed"):
        headers["openai-poll-after-ms"] = str(config.poll_after_ms)
    return web.json_response(_view(job, config), headers=headers)


async def _delete(request: web.Request) -> web.Response:
    """``DELETE /v1/videos/{id}``: forget the job and its assets."""
    job = _lookup(request)
    request.app[STATE_KEY].delete(job["id"])
    return web.json_response({"id": job["id"], "object": "video.deleted", "deleted": True})


async def _content(request: web.Request) -> web.StreamResponse:
    """``GET /v1/videos/{id}/content``: the MP4 (streamed), a WebP thumbnail or a JPEG sheet."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    job = _lookup(request)
    variant = request.query.get("variant", "video")
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise _invalid_value("variant", variant, ("video", "thumbnail", "spritesheet"))
    now = state.clock()
    if job["status"] != "completed" or now < float(job["_finished"]) + config.content_delay:
        message = "Video is not ready" if job["status"] != "failed" else "Video generation failed"
        raise _ApiFailure(
            config.not_ready_status,
            f"{message}: status is {job['status']}.",
            code="video_not_ready",
        )
    if _is_expired(job, config, now):
        message = "The assets of this video have expired."
        raise _ApiFailure(config.expired_status, message, code="video_expired")
    if variant == "video":
        cut = _CURRENT_FAULT.get() == "cut_stream"
        return await _stream_video(request, job, config, cut=cut)
    image_format = "WEBP" if variant == "thumbnail" else "JPEG"
    frames = 1 if variant == "thumbnail" else 4
    body = _preview(job, image_format, frames)
    return web.Response(body=body, content_type=f"image/{image_format.lower()}")


async def _stream_video(
    request: web.Request, job: dict[str, Any], config: MockConfig, *, cut: bool = False
) -> web.StreamResponse:
    """The MP4 in chunks; ``cut`` drops the connection halfway, as a crashed CDN would."""
    size = config.video_bytes
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "video/mp4"})
    response.content_length = size
    await response.prepare(request)
    body = _fake_mp4(str(job["id"]), size)
    for start in range(0, size, CHUNK_BYTES):
        if cut and start >= size // 2:
            _drop_connection(request)
            return response
        await response.write(body[start : start + CHUNK_BYTES])
        await asyncio.sleep(config.chunk_delay)
    await response.write_eof()
    return response


def _fake_mp4(job_id: str, size: int) -> bytes:
    """An ftyp box then one mdat box filling ``size`` bytes, deterministic per job."""
    payload_size = max(0, size - len(FTYP_BOX) - 8)
    seed = hashlib.sha256(job_id.encode()).digest()
    payload = (seed * (payload_size // len(seed) + 1))[:payload_size]
    mdat = (payload_size + 8).to_bytes(4, "big") + b"mdat" + payload
    return (FTYP_BOX + mdat)[:size]


def _preview(job: dict[str, Any], image_format: str, frames: int) -> bytes:
    """A small image, one tile per frame: the reference image if there was one, else a
    colour derived from the prompt."""
    width, height = (int(n) for n in str(job["size"]).split("x"))
    tile = (THUMB_WIDTH, max(1, THUMB_WIDTH * height // width))
    colour = tuple(hashlib.sha256(str(job["prompt"]).encode()).digest()[:3])
    image = Image.new("RGB", (tile[0] * frames, tile[1]), colour)
    if job.get("_look"):
        with Image.open(io.BytesIO(job["_look"])) as look:
            frame = look.convert("RGB").resize(tile)
        for index in range(frames):
            image.paste(frame, (index * tile[0], 0))
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def _small_copy(data: bytes) -> bytes:
    """A preview-sized PNG of an uploaded image (the job keeps this, not megabytes)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMB_WIDTH * 2, THUMB_WIDTH * 4))  # JPEGs decode at a fraction
        image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
    return out.getvalue()


async def _remix(request: web.Request) -> web.Response:
    """``POST /v1/videos/{id}/remix``: a new job from a completed one, with a new prompt."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    source = _lookup(request)
    raw, upload = await _read_body(request)
    unknown = sorted(set(raw) - {"prompt"}) + (["input_reference"] if upload else [])
    if unknown:
        raise _unknown_parameter(unknown[0])
    prompt = _validate_prompt(raw.get("prompt"), config.profile.max_prompt_chars)
    if source["status"] != "completed":
        message = (
            f"Video '{source['id']}' is {source['status']}; only a completed video can be remixed."
        )
        raise _bad("video_id", "video_not_ready", message, 409)
    fields = {**source["_fields"], "prompt": prompt}
    job_id = _idempotent_create(request, lambda: _new_job(request.app, fields, source["id"]))
    return web.json_response(_view(state.jobs[job_id], config))


# --------------------------------------------------------------------------- request bodies


@dataclass
class _Upload:
    data: bytes
    content_type: str | None


async def _read_body(request: web.Request) -> tuple[dict[str, Any], _Upload | None]:
    """The fields of a multipart or JSON body, and the uploaded image when there is one."""
    if request.content_type == "multipart/form-data":
        return await _read_multipart(request)
    if request.content_type == "application/json":
        return await _read_json(request), None
    message = (
        f"Unsupported content type '{request.content_type}': send multipart/form-data or JSON."
    )
    raise _ApiFailure(400, message)


async def _read_multipart(request: web.Request) -> tuple[dict[str, Any], _Upload | None]:
    fields: dict[str, Any] = {}
    upload: _Upload | None = None
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader) or not part.name:
            raise _ApiFailure(400, "Malformed multipart body: every part needs a name.")
        if part.name in fields or (part.name == "input_reference" and upload is not None):
            raise _ApiFailure(400, f"Duplicate parameter: '{part.name}'.", param=part.name)
        if part.filename is None:
            fields[part.name] = await part.text()
        elif part.name == "input_reference":
            data = await part.read(decode=True)
            upload = _Upload(bytes(data), part.headers.get(hdrs.CONTENT_TYPE))
        else:
            raise _unknown_parameter(part.name)
    return fields, upload


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.text())
    except ValueError:
        raise _ApiFailure(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise _ApiFailure(400, "The JSON body must be an object.")
    return data


def _bad(param: str, code: str, message: str, status: int = 400) -> _ApiFailure:
    """A client error about one parameter, as OpenAI reports it."""
    return _ApiFailure(status, message, param=param, code=code)


def _unknown_parameter(name: str) -> _ApiFailure:
    return _ApiFailure(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def _invalid_value(name: str, value: object, allowed: tuple[str, ...]) -> _ApiFailure:
    supported = ", ".join(f"'{a}'" for a in allowed)
    message = f"Invalid value: '{value}'. Supported values are: {supported}."
    return _ApiFailure(400, message, param=name, code="invalid_value")


def _validate_create(raw: Mapping[str, Any], profile: Profile) -> dict[str, str]:
    """The fields to create a job with, defaults filled in, or a 400 as the provider sends."""
    allowed = {*CORE_FIELDS, "input_reference", *profile.extra_fields}
    for name in raw:
        if name not in allowed:
            raise _unknown_parameter(name)
    _validate_reference_object(raw.get("input_reference"))
    fields = {"prompt": _validate_prompt(raw.get("prompt"), profile.max_prompt_chars)}
    for name in ("model", "seconds", "size"):
        value = raw.get(name, profile.defaults.get(name))
        fields[name] = _require_string(name, value)
    if fields["model"] not in profile.models:
        raise _invalid_value("model", fields["model"], tuple(profile.models))
    if fields["seconds"] not in profile.seconds:
        raise _invalid_value("seconds", fields["seconds"], profile.seconds)
    if fields["size"] not in profile.models[fields["model"]]:
        raise _invalid_value("size", fields["size"], profile.models[fields["model"]])
    fields.update(_validate_extras(raw, profile))
    return fields


def _validate_prompt(value: object, max_chars: int) -> str:
    if value is None:
        raise _bad("prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.")
    prompt = _require_string("prompt", value)
    if not prompt:
        message = "Invalid 'prompt': empty string. Expected a string with minimum length 1."
        raise _bad("prompt", "empty_string", message)
    if len(prompt) > max_chars:
        message = (
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{max_chars}, but got a string with length {len(prompt)} instead."
        )
        raise _bad("prompt", "string_above_max_length", message)
    return prompt


def _require_string(name: str, value: object) -> str:
    if not isinstance(value, str):
        message = f"Invalid type for '{name}': expected a string, but got {type(value).__name__}."
        raise _bad(name, "invalid_type", message)
    return value


def _validate_extras(raw: Mapping[str, Any], profile: Profile) -> dict[str, str]:
    extras: dict[str, str] = {}
    for name, spec in profile.extra_fields.items():
        if name not in raw:
            continue
        value = raw[name]
        if spec.boolean and isinstance(value, bool):
            value = "true" if value else "false"
        allowed = ("true", "false") if spec.boolean else spec.values
        text = _require_string(name, value)
        if allowed is not None and text not in allowed:
            raise _invalid_value(name, text, allowed)
        extras[name] = text
    return extras


def _validate_reference_object(value: object) -> None:
    """JSON ``input_reference``: an object with exactly one of ``image_url`` or ``file_id``."""
    if value is None:
        return
    if isinstance(value, dict) and len(value) == 1:
        ((name, ref),) = value.items()
        if name in ("image_url", "file_id") and isinstance(ref, str) and ref:
            return
    message = "Invalid 'input_reference': provide exactly one of 'image_url' or 'file_id'."
    raise _bad("input_reference", "invalid_value", message)


def _validate_upload(upload: _Upload, size: str) -> None:
    """The reference image: an allowed image type, decodable, exactly the video's size."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared not in IMAGE_TYPES:
        message = (
            f"Invalid file type for 'input_reference': '{declared or 'none'}'. "
            "Supported types are image/jpeg, image/png and image/webp."
        )
        raise _bad("input_reference", "invalid_image_format", message)
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            image.load()
            actual_format, actual_size = image.format, image.size
    except Exception:  # Pillow raises many types for bad data; all mean "not an image"
        message = "Invalid image: 'input_reference' could not be decoded."
        raise _bad("input_reference", "invalid_image", message) from None
    if actual_format != IMAGE_TYPES[declared]:
        message = f"Invalid image: declared {declared} but the data is {actual_format}."
        raise _bad("input_reference", "invalid_image", message)
    width, height = (int(n) for n in size.split("x"))
    if actual_size != (width, height):
        message = (
            f"Inpaint image must match the requested width and height ({width}x{height}); "
            f"got {actual_size[0]}x{actual_size[1]}."
        )
        raise _bad("input_reference", "invalid_image_size", message)


# --------------------------------------------------------------------------- running it


@dataclass
class RunningMock:
    """A started mock: where to send requests and what it saw."""

    base_url: str
    state: MockState
    config: MockConfig


def _check_loopback(host: str) -> None:
    """The mock accepts any API key and logs them: never expose it beyond this machine."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the mock server only listens on loopback addresses, not {host!r}")


@contextlib.asynccontextmanager
async def running_mock(
    config: MockConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningMock]:
    """Start the mock on ``host:port`` (0: a free port) and stop it on exit."""
    _check_loopback(host)
    config = config if config is not None else MockConfig()
    app = create_app(config)
    # A short shutdown timeout: a "slow" fault must not hold the test's exit for minutes.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        yield RunningMock(f"http://{url_host}:{bound_port}/v1", app[STATE_KEY], config)
    finally:
        await runner.cleanup()


class MockThread:
    """The mock in a background thread with its own event loop, for synchronous callers."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self._config = config if config is not None else MockConfig()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._mock: RunningMock | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="batchgen-mock", daemon=True)

    def __enter__(self) -> RunningMock:
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._mock is None:
            self._shutdown()
            raise RuntimeError("the mock server did not start") from self._error
        return self._mock

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to __enter__, which raises it
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with running_mock(self._config) as mock:
            self._mock = mock
            self._ready.set()
            await self._stop.wait()


def serve_forever(config: MockConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the mock until interrupted (``batchgen serve-mock``), printing its base URL."""
    _check_loopback(host)

    async def serve() -> None:
        async with running_mock(config, host=host, port=port) as mock:
            print(mock.base_url, flush=True)
            print("mock API running; press Ctrl-C to stop", file=sys.stderr, flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
