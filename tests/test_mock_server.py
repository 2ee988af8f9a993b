"""The simulated video API, exercised over real HTTP on 127.0.0.1 with aiohttp as client."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import pytest
from PIL import Image

from batchgen.mock import (
    Faults,
    MockConfig,
    MockThread,
    RunningMock,
    running_mock,
    serve_forever,
)
from batchgen.profile_files import load_profile
from tests.helpers import call

AUTH = {"Authorization": "Bearer sk-test-key"}
RELAY_WORDS = {
    "queued": "pending",
    "in_progress": "processing",
    "completed": "succeeded",
    "failed": "failure",
}
T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], seconds: float = 10.0) -> T:
    """Every wait in these tests has a limit, so a hang fails fast instead of stalling CI."""
    return await asyncio.wait_for(awaitable, seconds)


@asynccontextmanager
async def served(
    config: MockConfig | None = None,
) -> AsyncIterator[tuple[RunningMock, aiohttp.ClientSession]]:
    async with (
        running_mock(config) as mock,
        aiohttp.ClientSession(headers=AUTH, timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield mock, session


def image_bytes(width: int, height: int, image_format: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format=image_format)
    return out.getvalue()


def video_form(
    fields: dict[str, str], image: bytes | None = None, content_type: str | None = "image/png"
) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    if image is not None:
        form.add_field("input_reference", image, filename="ref.png", content_type=content_type)
    return form


async def create(mock: RunningMock, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
    status, body, _ = await call(session, "POST", f"{mock.base_url}/videos", **kwargs)
    assert status == 200, body
    return body


# --------------------------------------------------------------------------- create


async def test_multipart_create_with_image_of_requested_size() -> None:
    async with served() as (mock, session):
        form = video_form({"prompt": "a cat", "size": "1280x720"}, image_bytes(1280, 720))
        body = await create(mock, session, data=form)
        assert body["id"].startswith("video_")
        assert body["object"] == "video"
        assert (body["status"], body["progress"], body["size"]) == ("queued", 0, "1280x720")
        assert (body["model"], body["seconds"]) == ("sora-2", "4")
        assert body["completed_at"] is None and body["error"] is None
        assert mock.state.jobs_created == 1
        assert mock.state.create_requests == 1


async def test_image_of_wrong_size_is_rejected() -> None:
    async with served() as (mock, session):
        form = video_form({"prompt": "a cat", "size": "720x1280"}, image_bytes(1280, 720))
        status, body, _ = await call(session, "POST", f"{mock.base_url}/videos", data=form)
        assert status == 400
        assert "Inpaint image must match the requested width and height" in body["error"]["message"]
        assert body["error"]["param"] == "input_reference"
        assert mock.state.jobs_created == 0


async def test_image_part_without_content_type_is_rejected() -> None:
    boundary = "mockboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na cat\r\n'
        f"--{boundary}\r\nContent-Disposition: form-data; "
        'name="input_reference"; filename="ref.png"\r\n\r\n'
    )
    body = head.encode() + image_bytes(720, 1280) + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with served() as (mock, session):
        url = f"{mock.base_url}/videos"
        status, answer, _ = await call(session, "POST", url, data=body, headers=headers)
        assert status == 400
        assert answer["error"]["code"] == "invalid_image_format"
        assert mock.state.jobs_created == 0


@pytest.mark.parametrize(
    ("image", "content_type", "code"),
    [
        (image_bytes(720, 1280), "application/octet-stream", "invalid_image_format"),
        (b"not an image at all", "image/png", "invalid_image"),
        (image_bytes(720, 1280, "JPEG"), "image/png", "invalid_image"),
    ],
)
async def test_bad_image_parts_are_rejected(image: bytes, content_type: str, code: str) -> None:
    async with served() as (mock, session):
        form = video_form({"prompt": "a cat"}, image, content_type)
        status, body, _ = await call(session, "POST", f"{mock.base_url}/videos", data=form)
        assert (status, body["error"]["code"]) == (400, code)


@pytest.mark.parametrize("image_format", ["JPEG", "WEBP"])
async def test_jpeg_and_webp_references_are_accepted(image_format: str) -> None:
    async with served() as (mock, session):
        content_type = f"image/{image_format.lower()}"
        form = video_form({"prompt": "x"}, image_bytes(720, 1280, image_format), content_type)
        await create(mock, session, data=form)


async def test_json_create_uses_profile_defaults() -> None:
    async with served() as (mock, session):
        body = await create(mock, session, json={"prompt": "a dog"})
        assert (body["model"], body["seconds"], body["size"]) == ("sora-2", "4", "720x1280")
        assert body["prompt"] == "a dog"


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"prompt": "p", "model": "sora-9"}, "model", "invalid_value"),
        ({"prompt": "p", "model": "sora-2", "size": "1792x1024"}, "size", "invalid_value"),
        ({"prompt": "p", "size": "640x480"}, "size", "invalid_value"),
        ({"prompt": "p", "seconds": "10"}, "seconds", "invalid_value"),
        ({"prompt": "p", "seconds": 4}, "seconds", "invalid_type"),
        ({"prompt": "p", "style": "anime"}, "style", "unknown_parameter"),
        ({"prompt": "p", "colour": "red"}, "colour", "unknown_parameter"),
        ({"model": "sora-2"}, "prompt", "missing_required_parameter"),
        ({"prompt": ""}, "prompt", "empty_string"),
        ({"prompt": "p", "input_reference": {"url": "x"}}, "input_reference", "invalid_value"),
    ],
)
async def test_invalid_json_creates_are_rejected(
    payload: dict[str, Any], param: str, code: str
) -> None:
    async with served() as (mock, session):
        status, body, _ = await call(session, "POST", f"{mock.base_url}/videos", json=payload)
        assert status == 400, body
        error = body["error"]
        assert (error["param"], error["code"], error["type"]) == (
            param,
            code,
            "invalid_request_error",
        )
        assert mock.state.jobs_created == 0
        assert mock.state.create_requests == 1


async def test_unknown_multipart_field_is_rejected() -> None:
    async with served() as (mock, session):
        form = video_form({"prompt": "p", "watermark": "false"})
        status, body, _ = await call(session, "POST", f"{mock.base_url}/videos", data=form)
        assert status == 400
        assert body["error"]["message"] == "Unknown parameter: 'watermark'."


async def test_prompt_longer_than_profile_allows_is_rejected() -> None:
    profile = dataclasses.replace(load_profile("openai"), max_prompt_chars=10)
    async with served(MockConfig(profile=profile)) as (mock, session):
        url = f"{mock.base_url}/videos"
        status, body, _ = await call(session, "POST", url, json={"prompt": "x" * 11})
        assert (status, body["error"]["code"]) == (400, "string_above_max_length")
        await create(mock, session, json={"prompt": "x" * 10})


async def test_relay_profile_accepts_its_extra_fields_and_durations() -> None:
    config = MockConfig(profile=load_profile("relay"), id_prefix="task_")
    async with served(config) as (mock, session):
        for seconds in ("10", "15"):
            fields = {"prompt": "p", "seconds": seconds, "style": "anime", "watermark": "false"}
            body = await create(mock, session, data=video_form(fields))
            assert body["id"].startswith("task_") and body["seconds"] == seconds
        url = f"{mock.base_url}/videos"
        for bad in ({"style": "gothic"}, {"watermark": "yes"}):
            form = video_form({"prompt": "p", **bad})
            status, body, _ = await call(session, "POST", url, data=form)
            assert (status, body["error"]["param"]) == (400, next(iter(bad)))


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_bodies_other_than_multipart_or_json_are_rejected(content_type: str) -> None:
    # The official API documents only these two; a url-encoded form is not one of them.
    async with served() as (mock, session):
        url = f"{mock.base_url}/videos"
        headers = {"Content-Type": content_type}
        status, body, _ = await call(session, "POST", url, data=b"prompt=x", headers=headers)
        assert status == 400 and "Unsupported content type" in body["error"]["message"]


# --------------------------------------------------------------------------- idempotency


async def test_same_idempotency_key_returns_the_same_job_when_asked_to_honour_it() -> None:
    async with served(MockConfig(idempotency=True)) as (mock, session):
        headers = {"Idempotency-Key": "row-1"}
        first = await create(mock, session, json={"prompt": "a"}, headers=headers)
        second = await create(mock, session, json={"prompt": "a"}, headers=headers)
        assert first["id"] == second["id"]
        assert mock.state.jobs_created == 1
        assert mock.state.created_by_idempotency_key == {"row-1": 1}
        assert mock.state.create_requests == 2


async def test_by_default_idempotency_keys_are_ignored_as_real_providers_do() -> None:
    async with served() as (mock, session):
        headers = {"Idempotency-Key": "row-1"}
        first = await create(mock, session, json={"prompt": "a"}, headers=headers)
        second = await create(mock, session, json={"prompt": "a"}, headers=headers)
        assert first["id"] != second["id"]
        assert mock.state.created_by_idempotency_key == {"row-1": 2}
        assert mock.state.job_count_by_prompt() == {"a": 2}


# --------------------------------------------------------------------------- listing


async def test_listing_pages_newest_first() -> None:
    async with served() as (mock, session):
        ids = [(await create(mock, session, json={"prompt": f"p{i}"}))["id"] for i in range(5)]
        url = f"{mock.base_url}/videos"
        _, page, _ = await call(session, "GET", url, params={"limit": "2"})
        assert page["object"] == "list"
        assert [v["id"] for v in page["data"]] == ids[:-3:-1]
        assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
        seen = [v["id"] for v in page["data"]]
        while page["has_more"]:
            params = {"limit": "2", "after": page["last_id"]}
            _, page, _ = await call(session, "GET", url, params=params)
            seen += [v["id"] for v in page["data"]]
        assert seen == ids[::-1]
        _, ascending, _ = await call(session, "GET", url, params={"order": "asc"})
        assert [v["id"] for v in ascending["data"]] == ids
        assert ascending["has_more"] is False


@pytest.mark.parametrize(
    "params", [{"limit": "101"}, {"limit": "x"}, {"order": "up"}, {"after": "video_nope"}]
)
async def test_bad_listing_parameters(params: dict[str, str]) -> None:
    async with served() as (mock, session):
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos", params=params)
        assert status == 400 and body["error"]["code"] == "invalid_value"


async def test_listing_can_be_switched_off_like_a_relay() -> None:
    async with served(MockConfig(listing=False)) as (mock, session):
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos")
        assert status == 404
        assert body["error"]["message"] == "Invalid URL (GET /v1/videos)"


async def test_empty_listing() -> None:
    async with served() as (mock, session):
        _, page, _ = await call(session, "GET", f"{mock.base_url}/videos")
        assert page == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }


# --------------------------------------------------------------------------- lifecycle


async def test_job_completes_on_first_retrieve_with_zero_duration() -> None:
    async with served() as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert status == 200
        assert (body["status"], body["progress"]) == ("completed", 100)
        assert body["completed_at"] >= body["created_at"]
        assert body["expires_at"] == body["completed_at"] + 3600


async def test_progress_rises_with_time() -> None:
    clock = [1_000_000.0]
    config = MockConfig(job_duration=10.0, status_words=RELAY_WORDS, expires_after=100.0)
    async with served(config) as (mock, session):
        mock.state.clock = lambda: clock[0]
        job = await create(mock, session, json={"prompt": "a"})
        assert job["status"] == "pending"
        url = f"{mock.base_url}/videos/{job['id']}"
        clock[0] += 5
        _, body, _ = await call(session, "GET", url)
        assert (body["status"], body["progress"]) == ("processing", 50)
        clock[0] += 5
        _, body, _ = await call(session, "GET", url)
        assert (body["status"], body["completed_at"]) == ("succeeded", 1_000_010)
        assert body["expires_at"] == 1_000_110
        assert mock.state.jobs[job["id"]]["status"] == "completed"  # our word, internally


async def test_fail_marker_fails_the_job() -> None:
    async with served() as (mock, session):
        job = await create(mock, session, json={"prompt": "bad [fail] prompt"})
        _, body, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert body["status"] == "failed"
        assert body["error"]["code"] == "moderation_blocked" and body["error"]["message"]
        status, _, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}/content")
        assert status == 409


async def test_unknown_job_is_404() -> None:
    async with served() as (mock, session):
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos/video_missing")
        assert status == 404 and body["error"]["code"] == "video_not_found"


async def test_unknown_url_is_json_404() -> None:
    async with served() as (mock, session):
        status, body, _ = await call(session, "GET", f"{mock.base_url}/nothing")
        assert status == 404 and body["error"]["message"].startswith("Invalid URL")


# --------------------------------------------------------------------------- content


async def test_content_is_409_until_completed() -> None:
    async with served(MockConfig(job_duration=600)) as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        url = f"{mock.base_url}/videos/{job['id']}/content"
        status, body, _ = await call(session, "GET", url)
        assert status == 409
        assert "Video is not ready" in body["error"]["message"]


async def test_content_variants() -> None:
    config = MockConfig(video_bytes=100_000)
    async with served(config) as (mock, session):
        job = await create(mock, session, json={"prompt": "a", "size": "1280x720"})
        await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        url = f"{mock.base_url}/videos/{job['id']}/content"
        status, video, response = await call(session, "GET", url)
        assert status == 200 and response.content_type == "video/mp4"
        assert len(video) == 100_000
        assert video[:12] == b"\x00\x00\x00\x18ftypmp42"
        for variant, image_format in (("thumbnail", "WEBP"), ("spritesheet", "JPEG")):
            status, data, response = await call(session, "GET", url, params={"variant": variant})
            assert status == 200
            assert response.content_type == f"image/{image_format.lower()}"
            with Image.open(io.BytesIO(data)) as image:
                assert image.format == image_format
                assert image.height == 90
        status, _, _ = await call(session, "GET", url, params={"variant": "gif"})
        assert status == 400


async def test_expired_content_is_gone() -> None:
    async with served(MockConfig(expires_after=0)) as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        _, body, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert body["expires_at"] == body["completed_at"]
        url = f"{mock.base_url}/videos/{job['id']}/content"
        status, body, _ = await call(session, "GET", url)
        assert status == 410 and body["error"]["code"] == "video_expired"


# --------------------------------------------------------------------------- delete, remix


async def test_delete_then_retrieve_is_404() -> None:
    async with served() as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        url = f"{mock.base_url}/videos/{job['id']}"
        status, body, _ = await call(session, "DELETE", url)
        assert (status, body) == (
            200,
            {"id": job["id"], "object": "video.deleted", "deleted": True},
        )
        status, _, _ = await call(session, "GET", url)
        assert status == 404


async def test_state_delete_forgets_a_job() -> None:
    async with served() as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        mock.state.delete(job["id"])
        status, _, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert status == 404


async def test_remix_of_a_completed_video() -> None:
    async with served() as (mock, session):
        source = await create(mock, session, json={"prompt": "a", "size": "1280x720"})
        await call(session, "GET", f"{mock.base_url}/videos/{source['id']}")
        url = f"{mock.base_url}/videos/{source['id']}/remix"
        status, remix, _ = await call(session, "POST", url, json={"prompt": "b"})
        assert status == 200
        assert remix["remixed_from_video_id"] == source["id"]
        assert (remix["prompt"], remix["size"], remix["status"]) == ("b", "1280x720", "queued")
        status, body, _ = await call(session, "POST", url, data=video_form({"prompt": "c"}))
        assert status == 200
        status, body, _ = await call(session, "POST", url, json={"prompt": "c", "size": "1"})
        assert (status, body["error"]["code"]) == (400, "unknown_parameter")
        assert mock.state.jobs_created == 3


async def test_remix_needs_a_completed_source() -> None:
    async with served(MockConfig(job_duration=600)) as (mock, session):
        source = await create(mock, session, json={"prompt": "a"})
        url = f"{mock.base_url}/videos/{source['id']}/remix"
        status, _, _ = await call(session, "POST", url, json={"prompt": "b"})
        assert status == 409
        missing = f"{mock.base_url}/videos/nope/remix"
        status, _, _ = await call(session, "POST", missing, json={"prompt": "b"})
        assert status == 404


# --------------------------------------------------------------------------- faults


async def test_random_429_carries_retry_after() -> None:
    config = MockConfig(faults=Faults(error_429=1.0, retry_after_seconds=2.5))
    async with served(config) as (mock, session):
        url = f"{mock.base_url}/videos"
        status, body, response = await call(session, "POST", url, json={"prompt": "a"})
        assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
        assert response.headers["Retry-After"] == "2.5"
        assert response.headers["retry-after-ms"] == "2500"
        assert (mock.state.rate_limited, mock.state.jobs_created) == (1, 0)


async def test_rate_limit_window() -> None:
    clock = [5_000.0]
    config = MockConfig(faults=Faults(rate_limit_rpm=2))
    async with served(config) as (mock, session):
        mock.state.clock = lambda: clock[0]
        await create(mock, session, json={"prompt": "a"})
        clock[0] += 20.5
        await create(mock, session, json={"prompt": "b"})
        url = f"{mock.base_url}/videos"
        status, _, response = await call(session, "POST", url, json={"prompt": "c"})
        assert status == 429
        assert response.headers["Retry-After"] == "40"  # ceil(60 - 20.5)
        assert response.headers["retry-after-ms"] == "39500"
        clock[0] += 39.5
        await create(mock, session, json={"prompt": "c"})
        assert (mock.state.rate_limited, mock.state.jobs_created) == (1, 3)


@pytest.mark.parametrize(
    ("faults", "status"), [(Faults(error_500=1), 500), (Faults(error_503=1), 503)]
)
async def test_server_errors(faults: Faults, status: int) -> None:
    async with served(MockConfig(faults=faults)) as (mock, session):
        got, body, _ = await call(session, "POST", f"{mock.base_url}/videos", json={"prompt": "a"})
        assert got == status and body["error"]["type"] == "server_error"
        assert mock.state.jobs_created == 0


async def test_html_502() -> None:
    async with served(MockConfig(faults=Faults(html_502=1.0))) as (mock, session):
        status, body, response = await call(
            session, "POST", f"{mock.base_url}/videos", json={"prompt": "a"}
        )
        assert status == 502 and response.content_type == "text/html"
        assert b"502 Bad Gateway" in body


async def test_reset_after_create_drops_the_connection_but_keeps_the_job() -> None:
    async with served(MockConfig(faults=Faults(reset_after_create=1.0))) as (mock, session):
        url = f"{mock.base_url}/videos"
        headers = {"Idempotency-Key": "k"}
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await call(session, "POST", url, json={"prompt": "a"}, headers=headers)
        assert mock.state.jobs_created == 1
        assert mock.state.job_count_by_prompt() == {"a": 1}


async def test_slow_answer_exceeds_a_short_client_timeout() -> None:
    config = MockConfig(faults=Faults(slow=1.0, slow_seconds=5.0))
    async with served(config) as (mock, session):
        timeout = aiohttp.ClientTimeout(total=0.3)
        with pytest.raises(asyncio.TimeoutError):
            url = f"{mock.base_url}/videos"
            await call(session, "POST", url, json={"prompt": "a"}, timeout=timeout)
        assert mock.state.jobs_created == 1


@pytest.mark.parametrize("faults", [Faults(bad_json=1), Faults(missing_id=1)])
async def test_malformed_success_answers_create_nothing(faults: Faults) -> None:
    async with served(MockConfig(faults=faults)) as (mock, session):
        url = f"{mock.base_url}/videos"
        status, body, _ = await call(session, "POST", url, json={"prompt": "a"})
        assert status == 200
        if faults.bad_json:
            assert isinstance(body, bytes)
        else:
            assert isinstance(body, dict) and "id" not in body
        assert mock.state.jobs_created == 0


async def test_faults_only_hit_the_chosen_endpoints() -> None:
    config = MockConfig(faults=Faults(error_500=1.0, endpoints=frozenset({"retrieve"})))
    async with served(config) as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        status, _, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert status == 500
        assert mock.state.requests_by_endpoint == {"create": 1, "retrieve": 1}


async def test_faults_are_reproducible_from_the_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        config = MockConfig(faults=Faults(seed=seed, error_500=0.5))
        async with served(config) as (mock, session):
            url = f"{mock.base_url}/videos"
            return [(await call(session, "POST", url, json={"prompt": "a"}))[0] for _ in range(12)]

    first = await statuses(7)
    assert first == await statuses(7)
    assert set(first) == {200, 500}


# --------------------------------------------------------------------------- auth


async def test_auth_is_required_and_recorded() -> None:
    async with running_mock() as mock, aiohttp.ClientSession() as session:
        url = f"{mock.base_url}/videos"
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "sk-bare"}):
            status, body, _ = await call(session, "GET", url, headers=headers)
            assert status == 401 and body["error"]["code"] == "invalid_api_key"
        status, _, _ = await call(session, "GET", url, headers=AUTH)
        assert status == 200
        # aiohttp strips the trailing space of "Bearer " when sending.
        assert mock.state.auth_headers_seen == ["Bearer", "sk-bare", AUTH["Authorization"]]


async def test_auth_can_be_switched_off() -> None:
    config = MockConfig(require_auth=False)
    async with running_mock(config) as mock, aiohttp.ClientSession() as session:
        status, _, _ = await call(session, "GET", f"{mock.base_url}/videos")
        assert status == 200


# --------------------------------------------------------------------------- running it


def test_mock_thread_starts_and_stops() -> None:
    mock_thread = MockThread(MockConfig(require_auth=False))
    with mock_thread as mock:
        assert mock.base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{mock.base_url}/videos", timeout=10) as response:
            assert json.load(response)["object"] == "list"
        assert mock.state.requests_by_endpoint["list"] == 1
    assert not mock_thread._thread.is_alive()


def test_non_loopback_hosts_are_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve_forever(MockConfig(), host="0.0.0.0")


async def test_running_mock_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with running_mock(host="192.168.1.10"):
            pass


# --------------------------------------------------------------------------- polling, downloads


async def test_poll_after_header_while_the_job_runs() -> None:
    clock = [1_000_000.0]
    async with served(MockConfig(job_duration=10.0, poll_after_ms=1500)) as (mock, session):
        mock.state.clock = lambda: clock[0]
        job = await create(mock, session, json={"prompt": "a"})
        url = f"{mock.base_url}/videos/{job['id']}"
        _, _, response = await call(session, "GET", url)
        assert response.headers["openai-poll-after-ms"] == "1500"
        clock[0] += 10
        _, body, response = await call(session, "GET", url)
        assert body["status"] == "completed" and "openai-poll-after-ms" not in response.headers


@pytest.mark.parametrize("not_ready", [409, 400])
async def test_content_lags_completion_like_a_relay(not_ready: int) -> None:
    clock = [1_000_000.0]
    config = MockConfig(content_delay=30.0, not_ready_status=not_ready)
    async with served(config) as (mock, session):
        mock.state.clock = lambda: clock[0]
        job = await create(mock, session, json={"prompt": "a"})
        _, body, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert body["status"] == "completed"
        url = f"{mock.base_url}/videos/{job['id']}/content"
        status, body, _ = await call(session, "GET", url)
        assert status == not_ready and body["error"]["code"] == "video_not_ready"
        clock[0] += 30
        status, _, _ = await call(session, "GET", url)
        assert status == 200


async def test_expired_content_status_is_configurable() -> None:
    async with served(MockConfig(expires_after=0, expired_status=404)) as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}/content")
        assert status == 404 and body["error"]["code"] == "video_expired"


async def test_cut_stream_drops_the_connection_halfway_through_the_video() -> None:
    faults = Faults(cut_stream=1.0, endpoints=frozenset({"content"}))
    async with served(MockConfig(faults=faults, video_bytes=200_000)) as (mock, session):
        job = await create(mock, session, json={"prompt": "a"})
        await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        with pytest.raises(aiohttp.ClientPayloadError):
            await call(session, "GET", f"{mock.base_url}/videos/{job['id']}/content")
        # previews are small single answers: the fault cuts only the streamed video
        url = f"{mock.base_url}/videos/{job['id']}/content"
        status, _, _ = await call(session, "GET", url, params={"variant": "thumbnail"})
        assert status == 200
