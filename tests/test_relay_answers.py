"""The client speaks every profile: answers, error bodies, links to the video, odd job ids,
renamed request fields, previews only where they exist, other models, ``batchgen profiles``.

The relays are small aiohttp apps on 127.0.0.1 shaped as shared/reference/relays.md
describes them (new-api, LiteLLM, app relays), with a second server standing in for a CDN
on another origin that records whether it was sent the key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from batchgen.errors import ApiError
from batchgen.ledger import read_ledger
from batchgen.profile import Profile
from batchgen.profile_files import builtin_profile_names, load_profile
from batchgen.profile_traits import VideoLocation
from batchgen.provider.client import Video, VideoClient
from batchgen.provider.config import Secret
from tests.helpers import API_KEY, FAST, FOLLOW, AppThread, Invoke, make_image, write, write_csv

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
TIMEOUT = 30.0
SORA_ID = "sora-2:task_01k7xq9v2m4n6p8r0t"
LITELLM_ID = "video_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOm9wZW5haTt2aWRlb19pZDp2aWRlb18x+/ab=="


@dataclass
class Seen:
    """What a server was sent: paths and the Authorization header of each request."""

    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization)
    forms: list[dict[str, str]] = field(default_factory=list)  # multipart field -> value

    def note(self, request: web.Request) -> None:
        self.requests.append((request.path, request.headers.get("Authorization", "")))


def cdn() -> tuple[web.Application, Seen]:
    """A CDN on its own origin: serves the video at /files/v.mp4."""
    seen = Seen()

    async def video(request: web.Request) -> web.Response:
        seen.note(request)
        return web.Response(body=MP4, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/files/v.mp4", video)
    return app, seen


def relay(
    job_id: str, answer: dict[str, Any], *, content: str = "none"
) -> tuple[web.Application, Seen]:
    """A relay whose one job is ``job_id``; retrieve answers ``answer``; ``content`` is
    ``none`` (no route), ``mp4`` or a link answered as JSON."""
    seen = Seen()

    def known(request: web.Request) -> web.Response | None:
        seen.note(request)
        if request.match_info["id"] != job_id:  # the id must arrive whole, not split or cut
            return web.json_response({"error": {"message": "no such video"}}, status=404)
        return None

    async def create(request: web.Request) -> web.Response:
        seen.note(request)
        form = await request.post()
        seen.forms.append({name: _described(value) for name, value in form.items()})
        return web.json_response({"id": job_id, "status": "processing", "progress": 0})

    async def retrieve(request: web.Request) -> web.Response:
        return known(request) or web.json_response({"id": job_id, **answer})

    async def download(request: web.Request) -> web.Response:
        if (missing := known(request)) is not None:
            return missing
        if content == "mp4":
            return web.Response(body=MP4, content_type="video/mp4")
        return web.json_response({"video_url": content, "url": content})

    app = web.Application()
    app.router.add_post("/v1/videos", create)
    app.router.add_get("/v1/videos/{id}", retrieve)
    if content != "none":
        app.router.add_get("/v1/videos/{id}/content", download)
    return app, seen


def _described(value: str | bytes | bytearray | web.FileField) -> str:
    """A form field's text, or ``file:NAME`` for a file part."""
    return f"file:{value.filename}" if isinstance(value, web.FileField) else str(value)


@asynccontextmanager
async def client_for(base_url: str, profile: Profile) -> AsyncIterator[VideoClient]:
    async with aiohttp.ClientSession() as session:
        yield VideoClient(session, f"{base_url}/v1", profile, Secret(API_KEY), timeout=TIMEOUT)


def retrieved(base_url: str, profile: Profile, job_id: str) -> Video:
    async def go() -> Video:
        async with client_for(base_url, profile) as client:
            return await client.retrieve(job_id)

    return asyncio.run(asyncio.wait_for(go(), TIMEOUT))


def manifest(
    folder: Path, *rows: list[str], header: tuple[str, ...] = ("id", "prompt", "seconds")
) -> Path:
    return write_csv(folder / "night.csv", [list(header), *rows])


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("answer", "status", "progress", "link"),
    [
        ({"status": "SUCCESS", "progress": "100%", "metadata": {"url": "https://c.example/a.mp4"}},
         "completed", 100, "https://c.example/a.mp4"),
        ({"status": "IN_PROGRESS", "progress": "42%"}, "in_progress", 42, ""),
        ({"status": "processing", "progress": 37.5}, "in_progress", 37, ""),
        ({"status": "succeeded", "video_url": "https://c.example/b.mp4", "url": "https://x/y"},
         "completed", 0, "https://c.example/b.mp4"),
        ({"status": "FAILURE", "result_url": "not a link"}, "failed", 0, ""),
    ],
)  # fmt: skip
def test_relay_answers_are_read_as_relays_send_them(
    answer: dict[str, Any], status: str, progress: int, link: str
) -> None:
    app, _seen = relay("task_0123456789abcdefghijklmnopqrstuv", answer)
    with AppThread(app) as server:
        video = retrieved(
            server.base_url, load_profile("new-api"), "task_0123456789abcdefghijklmnopqrstuv"
        )
    assert (video.status, video.progress, video.video_url) == (status, progress, link)


def test_an_answer_naming_its_job_task_id_is_read() -> None:
    async def retrieve(request: web.Request) -> web.Response:
        return web.json_response({"task_id": "task_abc123xyz", "status": "QUEUED"})

    app = web.Application()
    app.router.add_get("/v1/videos/{id}", retrieve)
    with AppThread(app) as server:
        video = retrieved(server.base_url, load_profile("new-api"), "task_abc123xyz")
    assert (video.id, video.status) == ("task_abc123xyz", "queued")


LITELLM_MESSAGE = (
    "litellm.BadRequestError: OpenAIException - {'error': {'message': 'Your request was "
    "blocked by our moderation system.', 'type': 'invalid_request_error', 'code': "
    "'moderation_blocked'}}"
)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message", "code"),
    [
        (400, {"error": {"message": "size must be 720x1280", "code": "invalid_size"}},
         "application/json", "size must be 720x1280", "invalid_size"),
        (400, {"code": "task_not_exist", "message": "task not found", "data": None},
         "application/json", "task not found", "task_not_exist"),
        (400, {"error": {"message": LITELLM_MESSAGE, "code": "400"}},
         "application/json", "litellm.BadRequestError", "moderation_blocked"),
        (400, {"error": {"message": "litellm.BadRequestError: bad model", "code": "400"}},
         "application/json", "bad model", "400"),
        (403, "<html><head><title>Forbidden</title><style>p{}</style></head><body><h1>"
              "Access denied</h1><p>Error 1020 &amp; more</p></body></html>",
         "text/html", "Access denied Error 1020 & more", ""),
    ],
)  # fmt: skip
def test_error_bodies_give_the_providers_own_message_and_code(
    status: int, body: Any, content_type: str, message: str, code: str
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)

    async def retrieve(request: web.Request) -> web.Response:
        return web.Response(status=status, text=text, content_type=content_type)

    app = web.Application()
    app.router.add_get("/v1/videos/{id}", retrieve)
    with AppThread(app) as server, pytest.raises(ApiError) as caught:
        retrieved(server.base_url, load_profile("litellm"), "video_abc123")
    assert message in caught.value.message and "<" not in caught.value.message
    assert caught.value.code == code


@pytest.mark.parametrize("job_id", [SORA_ID, LITELLM_ID])
def test_job_ids_with_colons_and_base64_reach_the_provider_whole(job_id: str) -> None:
    app, seen = relay(job_id, {"status": "completed"}, content="mp4")
    with AppThread(app) as server:
        assert retrieved(server.base_url, load_profile("litellm"), job_id).status == "completed"
    assert len(seen.requests) == 1  # answered by the route for this very id, not a 404


# --------------------------------------------------------------------------- where the video is


@pytest.fixture
def no_refresh(tmp_path: Path) -> Iterator[Path]:
    """The sora-app profile without its 5 s refresh period, so the test polls quickly."""
    yield write(
        tmp_path / "sora-fast.yaml", "extends: sora-app\nname: sora-fast\nrefresh_seconds: 0\n"
    )


def test_a_video_on_another_origin_is_downloaded_without_the_key(
    tmp_path: Path, invoke: Invoke, no_refresh: Path
) -> None:
    cdn_app, cdn_seen = cdn()
    with AppThread(cdn_app) as cdn_server:
        link = f"{cdn_server.base_url}/files/v.mp4"
        app, seen = relay(SORA_ID, {"status": "completed", "progress": 100, "video_url": link})
        with AppThread(app) as server:
            path = manifest(tmp_path, ["c-01", "a paper boat", "10"])
            result = invoke(
                "run", path, "--profile", no_refresh, "--base-url", f"{server.base_url}/v1",
                *FAST, *FOLLOW, "--download", tmp_path / "videos",
            )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "videos" / "c-01.mp4").read_bytes() == MP4
    assert cdn_seen.requests == [("/files/v.mp4", "")]  # the CDN never saw the key
    assert all(auth == f"Bearer {API_KEY}" for _path, auth in seen.requests)
    state = read_ledger(tmp_path / "night.results.csv")["c-01"]
    assert (state["status"], state["job_id"], state["video_url"]) == ("downloaded", SORA_ID, link)


def test_a_completed_job_without_a_link_or_content_route_stays_completed(
    tmp_path: Path, invoke: Invoke, no_refresh: Path
) -> None:
    app, _seen = relay(SORA_ID, {"status": "completed", "progress": 100})
    with AppThread(app) as server:
        path = manifest(tmp_path, ["c-01", "a paper boat", "10"])
        result = invoke(
            "run", path, "--profile", no_refresh, "--base-url", f"{server.base_url}/v1",
            *FAST, *FOLLOW[:-1], "1", "--download", tmp_path / "videos",
        )  # fmt: skip
    assert result.exit_code == 4, result.output  # gave up waiting: run again later
    assert "not downloadable yet" in result.output and "no content endpoint" in result.output
    assert read_ledger(tmp_path / "night.results.csv")["c-01"]["status"] == "completed"
    assert not list((tmp_path / "videos").glob("*.mp4"))


def download_to(base_url: str, profile: Profile, job_id: str, dest: Path) -> int:
    async def go() -> int:
        async with client_for(base_url, profile) as client:
            return (await client.download(job_id, dest)).size_bytes

    return asyncio.run(asyncio.wait_for(go(), TIMEOUT))


def test_a_json_download_answer_is_followed_once_to_the_video(tmp_path: Path) -> None:
    video = VideoLocation(content_endpoint=True, json_link_fields=("video_url",), previews=())
    profile = replace(load_profile("sora-app"), video=video)
    cdn_app, cdn_seen = cdn()
    with AppThread(cdn_app) as cdn_server:
        app, _seen = relay(SORA_ID, {}, content=f"{cdn_server.base_url}/files/v.mp4")
        with AppThread(app) as server:
            size = download_to(server.base_url, profile, SORA_ID, tmp_path / "v.mp4")
    assert size == len(MP4) and (tmp_path / "v.mp4").read_bytes() == MP4
    assert cdn_seen.requests == [("/files/v.mp4", "")]


def test_a_json_download_answer_without_a_link_is_no_video(tmp_path: Path) -> None:
    app, _seen = relay(SORA_ID, {}, content="not a link")
    with AppThread(app) as server, pytest.raises(ApiError, match="JSON, not a video"):
        download_to(server.base_url, load_profile("litellm"), SORA_ID, tmp_path / "v.mp4")
    assert not list(tmp_path.iterdir())  # no JSON saved as a video, no .part left


@pytest.mark.parametrize("profile", ["sora-app", "new-api", "litellm"])
def test_a_preview_the_provider_does_not_make_is_refused_before_sending(
    tmp_path: Path, invoke: Invoke, profile: str
) -> None:
    app, seen = relay(SORA_ID, {})
    with AppThread(app) as server:
        path = manifest(tmp_path, ["c-01", "a paper boat", ""])
        result = invoke(
            "run", path, "--profile", profile, "--base-url", f"{server.base_url}/v1",
            *FAST, "--download", tmp_path / "videos", "--variant", "thumbnail",
        )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"the {profile} profile" in result.output and "thumbnail" in result.output
    assert "Traceback" not in result.output
    assert seen.requests == []


# --------------------------------------------------------------------------- request fields


def test_renamed_fields_and_image_part_are_sent_as_the_profile_says(
    tmp_path: Path, invoke: Invoke
) -> None:
    profile = write(
        tmp_path / "duration.yaml",
        "extends: new-api\nname: duration\nrefresh_seconds: 0\n"
        "request: {fields: {seconds: duration}, image_field: image}\n",
    )
    make_image(tmp_path / "ref.png")
    app, seen = relay("task_0123456789abcdefghijklmnopqrstuv", {"status": "SUCCESS"})
    with AppThread(app) as server:
        path = manifest(
            tmp_path,
            ["c-01", "a kite", "8", "ref.png"],
            header=("id", "prompt", "seconds", "image"),
        )
        result = invoke(
            "run", path, "--profile", profile, "--base-url", f"{server.base_url}/v1", *FAST
        )
    assert result.exit_code == 0, result.output
    [form] = seen.forms
    assert form["duration"] == "8" and "seconds" not in form
    assert form["image"] == "file:ref.png" and "input_reference" not in form


# --------------------------------------------------------------------------- validation


def test_models_a_relay_adds_are_allowed_with_one_warning_per_model(
    tmp_path: Path, invoke: Invoke
) -> None:
    path = manifest(
        tmp_path,
        ["a", "a kite", "8", "veo-3", "1920x1080"],
        ["b", "a boat", "4", "veo-3", "1080x1920"],
        ["c", "a cat", "8", "kling-2", "1280x720"],
        ["d", "a dog", "4", "sora-2", "720x1280"],
        header=("id", "prompt", "seconds", "model", "size"),
    )
    result = invoke("validate", path, "--profile", "new-api")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "night.csv:2: model: 'veo-3'" in warnings[0] and "new-api" in warnings[0]
    assert "'kling-2'" in warnings[1]
    assert "4 valid" in result.stdout


def test_other_models_still_need_a_size_shape_and_allowed_seconds(
    tmp_path: Path, invoke: Invoke
) -> None:
    path = manifest(
        tmp_path,
        ["a", "a kite", "8", "veo-3", "big"],
        ["b", "a boat", "7", "veo-3", "1920x1080"],
        header=("id", "prompt", "seconds", "model", "size"),
    )
    result = invoke("validate", path, "--profile", "new-api")
    assert result.exit_code == 2
    assert "night.csv:2: size: 'big' is not WIDTHxHEIGHT" in result.output
    assert "night.csv:3: seconds: '7' is not allowed" in result.output


def test_a_profile_that_refuses_other_models_names_its_own(tmp_path: Path, invoke: Invoke) -> None:
    path = manifest(
        tmp_path, ["a", "a kite", "10", "veo-3"], header=("id", "prompt", "seconds", "model")
    )
    result = invoke("validate", path, "--profile", "sora-app")
    assert result.exit_code == 2
    assert "night.csv:2: model: unknown model 'veo-3'; the sora-app profile allows" in result.output


@pytest.mark.parametrize("target", [SORA_ID, LITELLM_ID])
def test_remixing_a_relay_job_id_is_accepted(tmp_path: Path, invoke: Invoke, target: str) -> None:
    path = manifest(
        tmp_path, ["a", "a kite", "4", target], header=("id", "prompt", "seconds", "remix_of")
    )
    result = invoke("validate", path, "--profile", "litellm")
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- batchgen profiles


def test_profiles_lists_every_builtin_profile_on_one_line(invoke: Invoke) -> None:
    result = invoke("profiles")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name in builtin_profile_names():
        [line] = [line for line in lines if line.startswith(f"{name} ")]
        assert "default" in line and ("lists jobs" in line or "no list" in line)
    assert any(line.startswith("openai ") and "lists jobs" in line for line in lines)
    assert any(line.startswith("sora-app ") and "default 10 s" in line for line in lines)


def test_profiles_name_shows_what_it_accepts_and_how_it_behaves(invoke: Invoke) -> None:
    result = invoke("profiles", "relay")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "sora-2-pro: 720x1280, 1280x720, 1024x1792, 1792x1024" in text
    assert "seconds: 4, 8, 10, 12, 15" in text
    assert "style: thanksgiving, comic, news, selfie, nostalgic, anime" in text
    assert "other models: allowed" in text and "previews: none" in text
    assert "task_not_exist" in text and "every 15 s" in text
    assert "maybe made (looked up, never resent blindly): 504, 520, 524" in text
    assert "$0.10" in invoke("profiles", "openai").stdout


def test_profiles_of_a_user_file_and_an_unknown_name(tmp_path: Path, invoke: Invoke) -> None:
    path = write(
        tmp_path / "mine.yaml", "extends: sora-app\nname: mine\nprices: {sora-2: {'*': 0.2}}\n"
    )
    shown = invoke("profiles", path)
    assert shown.exit_code == 0 and "profile mine" in shown.stdout and "$0.20" in shown.stdout
    unknown = invoke("profiles", "nope")
    assert unknown.exit_code == 2 and "unknown profile 'nope'" in unknown.output
