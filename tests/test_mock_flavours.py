"""The simulated API serves each built-in profile's flavour, over real HTTP on 127.0.0.1:
new-api's task ids, words, flat errors and lagging statuses; an app relay's ids with a
colon, no /content and video links on a CDN that records whether it got the key;
Cloudflare's 52x pages; and ``batchgen run --mock`` downloading every video of each
profile's example manifest."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batchgen.ledger import read_ledger
from batchgen.mock import FAULT_NAMES, Faults, MockConfig, RunningMock, running_mock
from batchgen.profile_files import builtin_profile_names, load_profile, parse_profile
from tests.helpers import FAST, FOLLOW, FakeClock, Invoke, call

AUTH = {"Authorization": "Bearer sk-test-key"}
MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
EXAMPLES = {
    "openai": "example.yaml",
    "relay": "example-relay.yaml",
    "new-api": "example-new-api.yaml",
    "litellm": "example-litellm.yaml",
    "sora-app": "example-sora-app.yaml",
}


def flavour(name: str, **overrides: Any) -> MockConfig:
    """A built-in profile's flavour; jobs finish at once and statuses do not lag unless a
    test says otherwise."""
    timing = {"job_duration": 0.0, "refresh_seconds": 0.0}
    return MockConfig.for_profile(load_profile(name), **{**timing, **overrides})


@asynccontextmanager
async def served(config: MockConfig) -> AsyncIterator[tuple[RunningMock, aiohttp.ClientSession]]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        running_mock(config) as mock,
        aiohttp.ClientSession(headers=AUTH, timeout=timeout) as session,
    ):
        yield mock, session


async def create(
    mock: RunningMock, session: aiohttp.ClientSession, **fields: str
) -> tuple[int, Any, aiohttp.ClientResponse]:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in {"prompt": "a calm sea", **fields}.items():
        form.add_field(name, value)
    return await call(session, "POST", f"{mock.base_url}/videos", data=form)


# --------------------------------------------------------------------------- new-api


async def test_new_api_ids_words_percent_progress_and_task_id() -> None:
    async with served(flavour("new-api", job_duration=100.0)) as (mock, session):
        mock.state.clock = clock = FakeClock(1_000_000.0)
        status, job, _ = await create(mock, session)
        assert status == 200 and re.fullmatch(r"task_[0-9a-f]{32}", job["id"])
        assert (job["status"], job["progress"], job["task_id"]) == ("QUEUED", "0%", job["id"])
        clock.advance(200)
        _, done, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert (done["status"], done["progress"]) == ("SUCCESS", "100%")


async def test_new_api_unknown_id_is_400_task_not_exist_in_a_flat_body() -> None:
    async with served(flavour("new-api")) as (mock, session):
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos/task_nope")
        assert status == 400
        assert body["code"] == "task_not_exist" and body["data"] is None
        assert "task_nope" in body["message"] and "error" not in body


async def test_new_api_cannot_list_jobs() -> None:
    async with served(flavour("new-api")) as (mock, session):
        status, body, _ = await call(session, "GET", f"{mock.base_url}/videos")
        assert status in (404, 405) and body["data"] is None


async def test_new_api_429_has_its_message_and_no_retry_after() -> None:
    config = flavour("new-api", faults=Faults(error_429=1.0))
    async with served(config) as (mock, session):
        status, body, response = await create(mock, session)
    assert status == 429 and body["message"] == "当前分组上游负载已饱和，请稍后再试"
    assert "Retry-After" not in response.headers and "retry-after-ms" not in response.headers
    assert mock.state.jobs_created == 0


async def test_openai_429_keeps_retry_after() -> None:
    config = flavour("openai", faults=Faults(error_429=1.0, retry_after_seconds=2))
    async with served(config) as (mock, session):
        status, body, response = await create(mock, session)
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["Retry-After"] == "2"


async def test_new_api_statuses_lag_until_the_next_refresh_tick() -> None:
    config = flavour("new-api", job_duration=1.0, refresh_seconds=10.0)
    async with served(config) as (mock, session):
        mock.state.clock = clock = FakeClock(1_000_003.0)  # ticks at ...000, ...010
        _, job, _ = await create(mock, session)
        url = f"{mock.base_url}/videos/{job['id']}"
        clock.advance(6)  # really finished 5 s ago; the relay has not refreshed since
        _, seen, _ = await call(session, "GET", url)
        assert seen["status"] == "QUEUED"
        clock.advance(1)  # the tick at ...010
        _, seen, _ = await call(session, "GET", url)
        assert seen["status"] == "SUCCESS"


async def test_new_api_content_ignores_variant_and_sends_the_video() -> None:
    async with served(flavour("new-api")) as (mock, session):
        _, job, _ = await create(mock, session)
        url = f"{mock.base_url}/videos/{job['id']}/content?variant=thumbnail"
        status, body, response = await call(session, "GET", url)
    assert status == 200 and response.content_type == "video/mp4"
    assert body[4:8] == b"ftyp" and len(body) == mock.config.video_bytes


async def test_new_api_content_of_an_unfinished_task_is_400_not_completed_as_of_its_refresh() -> (
    None
):
    config = flavour("new-api", job_duration=1.0, refresh_seconds=10.0)
    async with served(config) as (mock, session):
        mock.state.clock = clock = FakeClock(1_000_003.0)  # ticks at ...000, ...010
        _, job, _ = await create(mock, session)
        url = f"{mock.base_url}/videos/{job['id']}/content"
        clock.advance(6)  # finished 5 s ago, but the proxy reads the relay's database
        status, body, _ = await call(session, "GET", url)
        assert status == 400 and body["data"] is None
        assert body["message"] == "Task is not completed yet, current status: QUEUED"
        clock.advance(1)  # the tick at ...010
        status, _, response = await call(session, "GET", url)
        assert status == 200 and response.content_type == "video/mp4"


# --------------------------------------------------------------------------- app relays


async def test_sora_app_ids_with_a_colon_route_and_answer_processing() -> None:
    async with served(flavour("sora-app", job_duration=100.0)) as (mock, session):
        status, job, _ = await create(mock, session, seconds="25")
        assert status == 200 and re.fullmatch(r"sora-2:task_[0-9a-f]{26}", job["id"])
        assert job["status"] == "processing" and "video_url" not in job
        status, again, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert status == 200 and again["id"] == job["id"]
        status, refused, _ = await create(mock, session, seconds="4")
        assert status == 400 and refused["error"]["param"] == "seconds"


async def test_sora_app_has_no_content_route_and_links_to_a_cdn_that_gets_no_key() -> None:
    async with served(flavour("sora-app")) as (mock, session):
        _, job, _ = await create(mock, session)
        _, done, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        status, _, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}/content")
        assert status == 404
        assert mock.cdn_url is not None and done["video_url"].startswith(f"{mock.cdn_url}/")
        assert not mock.base_url.startswith(mock.cdn_url)  # another origin: another port
        async with aiohttp.ClientSession() as anonymous:  # as a client should: no key
            status, video, _ = await call(anonymous, "GET", done["video_url"])
        assert status == 200 and video[4:8] == b"ftyp" and len(video) == mock.config.video_bytes
        await call(session, "GET", done["video_url"])  # a careless client sends its key
    assert mock.state.cdn_auth_headers == [None, AUTH["Authorization"]]


async def test_sora_app_download_endpoint_answers_json_with_the_link() -> None:
    async with served(flavour("sora-app")) as (mock, session):
        _, job, _ = await create(mock, session)
        status, link, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}/download")
    assert status == 200 and link["video_url"] == link["url"]
    assert mock.cdn_url is not None and link["url"].startswith(mock.cdn_url)


async def test_cdn_download_can_be_cut_mid_stream() -> None:
    config = flavour("sora-app", faults=Faults(cut_stream=1.0, endpoints=frozenset({"cdn"})))
    async with served(config) as (mock, session):
        _, job, _ = await create(mock, session)
        _, done, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        with pytest.raises(aiohttp.ClientPayloadError):
            await call(session, "GET", done["video_url"])


async def test_same_origin_video_url() -> None:
    async with served(MockConfig(video_url="same")) as (mock, session):
        _, job, _ = await create(mock, session)
        _, done, _ = await call(session, "GET", f"{mock.base_url}/videos/{job['id']}")
        assert mock.cdn_url is None
        assert done["video_url"].startswith(mock.base_url.removesuffix("/v1") + "/cdn/")
        status, body, _ = await call(session, "GET", done["video_url"])
    assert status == 200 and body[4:8] == b"ftyp"


# --------------------------------------------------------------------------- Cloudflare


@pytest.mark.parametrize(
    ("fault", "status", "created"),
    [("html_520", 520, 1), ("html_522", 522, 0), ("html_524", 524, 1)],
)
async def test_cloudflare_pages_and_what_was_created_behind_them(
    fault: str, status: int, created: int
) -> None:
    rates: dict[str, Any] = {fault: 1.0}
    config = flavour("relay", faults=Faults(**rates))
    async with served(config) as (mock, session):
        answered, body, response = await create(mock, session)
    assert answered == status and response.content_type == "text/html"
    assert f"Error code {status}" in body.decode() and "Cloudflare" in body.decode()
    assert mock.state.jobs_created == created  # what the relay would bill


def test_new_fault_kinds_leave_older_seeds_drawing_the_same() -> None:
    older = (
        "error_429", "error_500", "error_503", "html_502",
        "reset_after_create", "slow", "bad_json", "missing_id", "cut_stream",
    )  # fmt: skip
    assert FAULT_NAMES[: len(older)] == older
    assert FAULT_NAMES[len(older) :] == ("html_520", "html_522", "html_524")


# --------------------------------------------------------------------------- profile data


async def test_litellm_lists_nothing_and_its_429_has_no_retry_after() -> None:
    config = flavour("litellm", faults=Faults(error_429=1.0))
    async with served(config) as (mock, session):
        listed, _, _ = await call(session, "GET", f"{mock.base_url}/videos")
        status, body, response = await create(mock, session)
    assert listed in (404, 405)
    assert status == 429 and "error" in body and "Retry-After" not in response.headers


async def test_a_users_profile_renames_fields_and_allows_other_models() -> None:
    text = (
        "name: mine\nextends: new-api\nrequest:\n  fields: {seconds: duration}\n"
        "  image_field: image\n"
    )
    config = MockConfig.for_profile(parse_profile(text, source="mine.yaml"))
    async with served(config) as (mock, session):
        body = {"prompt": "a fox", "model": "veo-3", "duration": 6, "size": "1920x1080"}
        status, job, _ = await call(session, "POST", f"{mock.base_url}/videos", json=body)
    assert status == 200 and (job["model"], job["seconds"]) == ("veo-3", "6")


def test_every_builtin_profile_has_a_flavour() -> None:
    for name in builtin_profile_names():
        profile = load_profile(name)
        config = MockConfig.for_profile(profile)
        assert config.listing == profile.can_list
        assert config.content_endpoint == profile.video.content_endpoint
        assert config.id_prefix == profile.simulated.id_prefix
    with pytest.raises(TypeError, match="colour"):
        MockConfig.for_profile(load_profile("openai"), colour="red")


# --------------------------------------------------------------------------- the CLI


def test_serve_mock_flavor_serves_new_api_to_another_process() -> None:
    command = [sys.executable, "-m", "batchgen", "serve-mock", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--flavor", "new-api"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()  # the first line is its address
        request = subprocess.run(
            [sys.executable, "-c", _FETCH, f"{base_url}/videos/task_unknown"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        status, body = request.stdout.split(" ", 1)
        assert status == "400" and json.loads(body)["code"] == "task_not_exist"
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0


_FETCH = """
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer sk-x"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"""


@pytest.mark.parametrize("profile", sorted(EXAMPLES))
def test_run_mock_downloads_every_video_of_each_profiles_example(
    profile: str, tmp_path: Path, invoke: Invoke
) -> None:
    out, videos = tmp_path / "results.csv", tmp_path / "videos"
    manifest = MANIFESTS / EXAMPLES[profile]
    args = ("run", manifest, "--profile", profile, "--mock", "--out", out, *FAST, *FOLLOW)
    result = invoke(*args, "--download", videos)
    assert result.exit_code == 0, result.output
    states = read_ledger(out)
    assert states and {s["status"] for s in states.values()} == {"downloaded"}
    files = sorted(videos.glob("*.mp4"))
    assert len(files) == len(states) and all(f.stat().st_size > 0 for f in files)
