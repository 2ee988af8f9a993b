"""How the simulated provider hands a finished video over: streamed by ``/content``, as a
link in the retrieve answer (same origin, or a CDN on a second origin that never needs
the key), or as a JSON "download" answer carrying that link. Video bodies honour
``Range: bytes=N-`` (206 and the rest; 416 from beyond the end), as real servers and CDNs
do, unless the config says the server ignores Range."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web

from batchgen.mock.config import MockConfig
from batchgen.mock.failures import ApiFailure
from batchgen.mock.faults import CURRENT_FAULT, drop_connection
from batchgen.mock.lifecycle import is_expired, lookup, view
from batchgen.mock.media import CHUNK_BYTES, fake_mp4
from batchgen.mock.state import CONFIG_KEY, RUNTIME_KEY, STATE_KEY

CDN_PATH = "/cdn/{video_id}.mp4"
#: The one Range form resuming clients send (the rest, from byte N); others get the whole file.
_OPEN_RANGE = re.compile(r"bytes=(\d+)-")


def delivery_routes(config: MockConfig) -> list[web.RouteDef]:
    """The file and link routes ``config``'s flavour has (none for OpenAI's)."""
    found: list[web.RouteDef] = []
    if config.video_url == "same" or config.download_link:
        found.append(web.get(CDN_PATH, serve_file, name="cdn", allow_head=False))
    if config.download_link:
        path = "/v1/videos/{video_id}/download"
        found.append(web.get(path, _download_link, name="download", allow_head=False))
    return found


def public(request: web.Request, job: dict[str, Any]) -> dict[str, Any]:
    """The job as the provider answers it, with ``video_url`` once it is done (if it does)."""
    config = request.app[CONFIG_KEY]
    answer = view(job, config)
    if config.video_url != "none" and job["status"] == "completed":
        answer["video_url"] = file_url(request, job)
    return answer


def file_url(request: web.Request, job: dict[str, Any]) -> str:
    """Where the job's MP4 is: on the CDN's origin when there is one, else this one."""
    cdn = request.app[RUNTIME_KEY].cdn_origin
    origin = cdn if request.app[CONFIG_KEY].video_url == "cdn" and cdn else _origin(request)
    return origin + CDN_PATH.format(video_id=quote(str(job["id"]), safe=""))


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _download_link(request: web.Request) -> web.Response:
    """``GET /v1/videos/{id}/download``: JSON with the link, as some resellers answer."""
    job = lookup(request)
    check_ready(job, request.app[CONFIG_KEY], request.app[STATE_KEY].clock())
    link = file_url(request, job)
    return web.json_response({"video_url": link, "url": link})


async def serve_file(request: web.Request) -> web.StreamResponse:
    """``GET /cdn/{id}.mp4``: the file, to anyone holding the link (no key needed)."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    job = state.jobs.get(request.match_info["video_id"])
    if job is None or job["status"] != "completed":
        raise web.HTTPNotFound(text="no such file")
    if is_expired(job, config, state.clock()):
        raise web.HTTPForbidden(text="Request has expired")  # a signed link past its time
    return await stream_video(request, job, config, cut=CURRENT_FAULT.get() == "cut_stream")


def check_ready(job: dict[str, Any], config: MockConfig, now: float) -> None:
    """Raise the provider's answer when the job's video cannot be had (yet, or any more)."""
    if job["status"] != "completed" or now < float(job["_finished"]) + config.content_delay:
        raise ApiFailure(config.not_ready_status, _not_ready(job, config), code="video_not_ready")
    if is_expired(job, config, now):
        message = "The assets of this video have expired."
        raise ApiFailure(config.expired_status, message, code="video_expired")


def _not_ready(job: dict[str, Any], config: MockConfig) -> str:
    """What the provider says of a video it cannot hand over yet, in its own words."""
    if config.not_ready_message is not None:
        word = config.status_words.get(job["status"], job["status"])
        return config.not_ready_message.format(status=word)
    message = "Video is not ready" if job["status"] != "failed" else "Video generation failed"
    return f"{message}: status is {job['status']}."


async def stream_video(
    request: web.Request, job: dict[str, Any], config: MockConfig, *, cut: bool = False
) -> web.StreamResponse:
    """The MP4 in chunks, or the rest of it from a Range's start (206); ``cut`` drops the
    connection halfway through what is sent, as a crashed CDN (or a relay's proxy timing
    out) would. Every byte sent is counted on the state, by job."""
    size, job_id = config.video_bytes, str(job["id"])
    start = _range_start(request) if config.ranges else None
    if start is not None and start >= size:
        headers = {hdrs.CONTENT_RANGE: f"bytes */{size}"}
        return web.Response(status=416, text="Range Not Satisfiable", headers=headers)
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "video/mp4"})
    if start is not None:
        response.set_status(206)
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{size - 1}/{size}"
    body = fake_mp4(job_id, size)[start or 0 :]
    response.content_length = len(body)
    await response.prepare(request)
    sent = request.app[STATE_KEY].video_bytes_sent
    for offset in range(0, len(body), CHUNK_BYTES):
        if cut and offset >= len(body) // 2:
            drop_connection(request)
            return response
        piece = body[offset : offset + CHUNK_BYTES]
        await response.write(piece)
        sent[job_id] += len(piece)
        await asyncio.sleep(config.chunk_delay)
    await response.write_eof()
    return response


def _range_start(request: web.Request) -> int | None:
    """N of ``Range: bytes=N-``; None without one (or in a form not served: whole file)."""
    match = _OPEN_RANGE.fullmatch(request.headers.get(hdrs.RANGE, "").strip())
    return int(match[1]) if match else None
