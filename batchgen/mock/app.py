"""The simulated API as an aiohttp app: its routes and the middleware around every
endpoint (bookkeeping, latency, auth, rate limit, faults); and the CDN app that serves
a flavour's video links from a second origin."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from batchgen.mock.config import MockConfig
from batchgen.mock.delivery import CDN_PATH, serve_file
from batchgen.mock.failures import ApiFailure, invalid_url
from batchgen.mock.faults import (
    CURRENT_FAULT,
    check_rate_window,
    draw_fault,
    early_fault,
    late_fault,
)
from batchgen.mock.handlers import routes
from batchgen.mock.state import CONFIG_KEY, RUNTIME_KEY, STATE_KEY, MockState, Runtime


def create_app(config: MockConfig, state: MockState | None = None) -> web.Application:
    """The simulated API as an aiohttp app; its state is ``app[STATE_KEY]``."""
    app = web.Application(middlewares=[_middleware], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state if state is not None else MockState()
    app[CONFIG_KEY] = config
    app[RUNTIME_KEY] = Runtime(rng=random.Random(config.faults.seed))
    app.add_routes(routes(config))
    return app


def create_cdn_app(api: web.Application) -> web.Application:
    """The CDN a flavour's ``video_url`` points to: another origin, sharing ``api``'s jobs,
    faults and bookkeeping (it records every Authorization header it is sent)."""
    cdn = web.Application(middlewares=[_middleware])
    # The same objects as the API's, so both origins see one set of jobs.
    cdn[STATE_KEY], cdn[CONFIG_KEY], cdn[RUNTIME_KEY] = (
        api[STATE_KEY],
        api[CONFIG_KEY],
        api[RUNTIME_KEY],
    )
    cdn.add_routes([web.get(CDN_PATH, serve_file, name="cdn", allow_head=False)])
    return cdn


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
        check_rate_window(request.app, endpoint)
        fault = draw_fault(request.app, endpoint)
        CURRENT_FAULT.set(fault)
        early = early_fault(fault, config)
        if early is not None:
            return early
        response = await handler(request)
    except ApiFailure as failure:
        if failure.status == 429:
            state.rate_limited_by_endpoint[endpoint] += 1
        return failure.response(config.error_shape)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return invalid_url(request).response(config.error_shape)
    return await late_fault(request, fault, config, response)


def _check_auth(request: web.Request, state: MockState, config: MockConfig) -> None:
    profile = config.profile
    raw = request.headers.get(profile.auth_header)
    if request.match_info.route.name == "cdn":
        # A video link needs no key: one sent anyway went where it should not (recorded).
        state.cdn_auth_headers.append(request.headers.get(hdrs.AUTHORIZATION))
        return
    if raw is not None:
        state.auth_headers_seen.append(raw)
    if not config.require_auth:
        return
    prefix = f"{profile.auth_scheme} " if profile.auth_scheme else ""
    if raw is None or not raw.startswith(prefix) or not raw[len(prefix) :].strip():
        raise ApiFailure(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            f"{profile.auth_header} header using {profile.auth_scheme or 'bare'} auth.",
            code="invalid_api_key",
        )
