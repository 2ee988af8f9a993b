"""The simulated ``/v1/videos`` endpoints: create, list, retrieve, delete, content, remix."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from batchgen.mock.config import MockConfig
from batchgen.mock.delivery import check_ready, delivery_routes, public, stream_video
from batchgen.mock.failures import bad, invalid_url, invalid_value, unknown_parameter
from batchgen.mock.faults import CURRENT_FAULT
from batchgen.mock.lifecycle import advance, lookup, new_job, observed_at
from batchgen.mock.media import preview, small_copy
from batchgen.mock.requests import read_body, validate_create, validate_prompt, validate_upload
from batchgen.mock.running import check_running_cap
from batchgen.mock.state import CONFIG_KEY, STATE_KEY


def routes(config: MockConfig) -> list[web.RouteDef]:
    """Every endpoint ``config``'s flavour has, named as the middleware and the faults'
    ``endpoints`` know them. A provider that cannot list or has no /content route lacks
    the route, so it answers as for any unknown path."""
    found = [
        web.post("/v1/videos", _create, name="create"),
        web.get("/v1/videos/{video_id}", _retrieve, name="retrieve", allow_head=False),
        web.delete("/v1/videos/{video_id}", _delete, name="delete"),
        web.post("/v1/videos/{video_id}/remix", _remix, name="remix"),
    ]
    if config.listing:
        found.append(web.get("/v1/videos", _list, name="list", allow_head=False))
    if config.content_endpoint:
        path = "/v1/videos/{video_id}/content"
        found.append(web.get(path, _content, name="content", allow_head=False))
    return found + delivery_routes(config)


async def _create(request: web.Request) -> web.Response:
    """``POST /v1/videos``: validate, honour Idempotency-Key, create a queued job."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    raw, upload = await read_body(request, config.profile.image_field)
    fields = validate_create(raw, config.profile)
    if upload is not None:
        validate_upload(upload, fields["size"])
    job_id = _idempotent_create(request, lambda: new_job(request.app, fields, None))
    job = state.jobs[job_id]
    if upload is not None and "_look" not in job:
        job["_look"] = small_copy(upload.data)  # previews look like the reference image
    return web.json_response(public(request, job))


def _idempotent_create(request: web.Request, make: Callable[[], str]) -> str:
    """Reuse the job an Idempotency-Key already created, else make one (within the
    running cap) and remember it."""
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    key = request.headers.get("Idempotency-Key")
    if key and config.idempotency:
        known = state.job_by_idempotency_key.get(key)
        if known is not None and known in state.jobs:
            return known
    check_running_cap(request.app)  # an app relay's "too many running tasks": nothing made
    job_id = make()
    if key:
        state.created_by_idempotency_key[key] = state.created_by_idempotency_key.get(key, 0) + 1
        state.job_by_idempotency_key[key] = job_id
    return job_id


async def _list(request: web.Request) -> web.Response:
    """``GET /v1/videos``: a page of jobs, newest first unless ``order=asc``."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    if not config.listing:  # the route exists only when listing; kept for a config changed later
        raise invalid_url(request)
    limit, order, after = _list_params(request)
    now = observed_at(config, state.clock())
    for job in state.jobs.values():
        advance(job, config, now)
    ordered = sorted(state.jobs.values(), key=lambda j: (j["created_at"], j["_sequence"]))
    if order == "desc":
        ordered.reverse()
    ids = [job["id"] for job in ordered]
    if after is not None:
        if after not in ids:
            raise bad("after", "invalid_value", f"Invalid 'after': no video with id '{after}'.")
        ordered = ordered[ids.index(after) + 1 :]
    page = [public(request, job) for job in ordered[:limit]]
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
        raise bad("limit", "invalid_value", "Invalid 'limit': expected an integer from 0 to 100.")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_value("order", order, ("asc", "desc"))
    return limit, order, query.get("after")


async def _retrieve(request: web.Request) -> web.Response:
    """``GET /v1/videos/{id}``, with ``openai-poll-after-ms`` while the job runs (if set)."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    job = lookup(request)
    state.retrieved_at[job["id"]].append(state.clock())
    headers = {}
    if config.poll_after_ms is not None and job["status"] not in ("completed", "failed"):
        headers["openai-poll-after-ms"] = str(config.poll_after_ms)
    return web.json_response(public(request, job), headers=headers)


async def _delete(request: web.Request) -> web.Response:
    """``DELETE /v1/videos/{id}``: forget the job and its assets."""
    job = lookup(request)
    request.app[STATE_KEY].delete(job["id"])
    return web.json_response({"id": job["id"], "object": "video.deleted", "deleted": True})


async def _content(request: web.Request) -> web.StreamResponse:
    """``GET /v1/videos/{id}/content``: the MP4 (streamed), a WebP thumbnail or a JPEG sheet."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    job = lookup(request)
    variant = request.query.get("variant", "video")
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise invalid_value("variant", variant, ("video", "thumbnail", "spritesheet"))
    check_ready(job, config, state.clock())
    if variant not in config.previews:  # a proxy that ignores variant= sends the video
        return await stream_video(request, job, config, cut=CURRENT_FAULT.get() == "cut_stream")
    image_format = "WEBP" if variant == "thumbnail" else "JPEG"
    frames = 1 if variant == "thumbnail" else 4
    body = preview(job, image_format, frames)
    return web.Response(body=body, content_type=f"image/{image_format.lower()}")


async def _remix(request: web.Request) -> web.Response:
    """``POST /v1/videos/{id}/remix``: a new job from a completed one, with a new prompt."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    source = lookup(request)
    raw, upload = await read_body(request)
    unknown = sorted(set(raw) - {"prompt"}) + (["input_reference"] if upload else [])
    if unknown:
        raise unknown_parameter(unknown[0])
    prompt = validate_prompt(raw.get("prompt"), config.profile.max_prompt_chars)
    if source["status"] != "completed":
        message = (
            f"Video '{source['id']}' is {source['status']}; only a completed video can be remixed."
        )
        raise bad("video_id", "video_not_ready", message, 409)
    fields = {**source["_fields"], "prompt": prompt}
    job_id = _idempotent_create(request, lambda: new_job(request.app, fields, source["id"]))
    return web.json_response(public(request, state.jobs[job_id]))
