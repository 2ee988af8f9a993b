"""Seeded fault injection and the rate windows (creates; status checks): which fault a
request draws, and the answers (or dropped connections) it turns into."""

from __future__ import annotations

import asyncio
import contextvars
import math

from aiohttp import web

from batchgen.mock.config import FAULT_NAMES, STATUS_ENDPOINTS, MockConfig
from batchgen.mock.failures import ApiFailure, rate_limited
from batchgen.mock.state import CONFIG_KEY, RUNTIME_KEY, STATE_KEY

CDN_502_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"
)
#: Cloudflare's pages for an origin that failed it, by status (cloudflare-5xx-errors).
CLOUDFLARE_PAGES = {
    520: "Web server is returning an unknown error",
    522: "Connection timed out",
    524: "A timeout occurred",
}
# The fault drawn for the request being handled (each request runs in its own task), for
# faults a handler applies itself, such as cutting a stream halfway.
CURRENT_FAULT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "batchgen_mock_current_fault", default=None
)


def check_rate_window(app: web.Application, endpoint: str) -> None:
    """Sliding windows of ``faults.rate_window`` seconds, one over creates and one over
    status checks (retrieve and list together), each counted on its own as a relay's
    limits are: a request beyond ``rate_limit_rpm`` (creates) or ``status_rate_limit_rpm``
    (status checks) in the window is answered 429, in the flavour's words and headers."""
    faults = app[CONFIG_KEY].faults
    if endpoint == "create":
        limit, counted = faults.rate_limit_rpm, "create"
    elif endpoint in STATUS_ENDPOINTS:
        limit, counted = faults.status_rate_limit_rpm, "status"
    else:
        return
    if limit is None:
        return
    now, span = app[STATE_KEY].clock(), faults.rate_window
    window = app[RUNTIME_KEY].windows[counted]
    while window and window[0] <= now - span:
        window.popleft()
    if len(window) < limit:
        window.append(now)
        return
    wait = window[0] + span - now  # until the oldest request counted leaves the window
    config = app[CONFIG_KEY]
    raise rate_limited(
        config.rate_limit_message or f"Rate limit reached: {limit} requests per minute.",
        retry_after=str(max(1, math.ceil(wait))),
        retry_after_ms=max(1, math.ceil(wait * 1000)),
        headers=config.retry_after,
    )


def draw_fault(app: web.Application, endpoint: str) -> str | None:
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


def early_fault(fault: str | None, config: MockConfig) -> web.Response | None:
    """Faults answered before the handler runs, so no job is created."""
    if fault == "error_429":
        seconds = config.faults.retry_after_seconds
        raise rate_limited(
            config.rate_limit_message or "Rate limit reached for requests.",
            retry_after=f"{seconds:g}",
            retry_after_ms=max(0, round(seconds * 1000)),
            headers=config.retry_after,
        )
    if fault == "error_500":
        message = "The server had an error while processing your request. Sorry about that!"
        raise ApiFailure(500, message, kind="server_error")
    if fault == "error_503":
        message = "The engine is currently overloaded, please try again later."
        raise ApiFailure(503, message, kind="server_error", code="service_unavailable")
    if fault == "html_502":
        return web.Response(status=502, text=CDN_502_PAGE, content_type="text/html")
    if fault == "html_522":  # the relay was never reached: nothing was created
        return cloudflare_page(522)
    if fault == "bad_json":
        # Labelled JSON but not JSON: a client must not trust the content type.
        body = "<!DOCTYPE html><html><body>upstream returned an invalid response</body></html>"
        return web.Response(status=200, text=body, content_type="application/json")
    if fault == "missing_id":
        return web.json_response({"object": "video", "status": "queued", "progress": 0})
    return None


async def late_fault(
    request: web.Request, fault: str | None, config: MockConfig, response: web.StreamResponse
) -> web.StreamResponse:
    """Faults applied after the handler ran (for a create: after the job exists)."""
    if fault == "reset_after_create":
        drop_connection(request)
    elif fault == "slow":
        await asyncio.sleep(config.faults.slow_seconds)
    elif fault in ("html_520", "html_524"):  # the job exists; the answer is garbled or lost
        return cloudflare_page(int(fault.removeprefix("html_")))
    return response


def cloudflare_page(status: int) -> web.Response:
    """The HTML error page Cloudflare answers with when the origin behind it failed."""
    title = f"{status}: {CLOUDFLARE_PAGES[status]}"
    page = (
        f"<!DOCTYPE html><html><head><title>relay.example.com | {title}</title></head>"
        f"<body><h1>{CLOUDFLARE_PAGES[status]}</h1><span>Error code {status}</span>"
        "<p>Cloudflare Ray ID: 8c1f0e2b7a9d4e31</p></body></html>"
    )
    return web.Response(status=status, text=page, content_type="text/html")


def drop_connection(request: web.Request) -> None:
    """Close the socket without answering: the client sees a disconnect, not a status."""
    transport = request.transport
    if transport is not None:
        # aiohttp then fails to write the response and drops it quietly (ConnectionError).
        transport.abort()
