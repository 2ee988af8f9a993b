"""Security: the API key stays secret, goes only where it should, and only over TLS that is
verified.

The key is a recognisable string (``conftest.API_KEY``); after every command — successful or
failing — stdout, stderr, the log file and every file under the test's folder are searched
for it. Servers are real, on 127.0.0.1: the simulated API, small aiohttp apps standing in
for a hostile relay or a CDN, and an https server with a self-signed certificate.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from batchgen.errors import RejectedError
from batchgen.jobs import Job
from batchgen.ledger import Ledger, read_ledger
from batchgen.mock import STATE_KEY, MockConfig, RunningMock, create_app
from batchgen.profile import Profile
from batchgen.profile_files import load_profile, parse_profile
from batchgen.provider.client import VideoClient
from batchgen.provider.config import Secret
from tests.helpers import API_KEY, AppThread, Invocation, Invoke, make_image, write_csv

StartMock = Callable[..., RunningMock]
FAST = ("--rpm", "100000", "--backoff", "0.01", "--max-attempts", "2")
#: Fragments of the key that must not appear either (a key cut in half is still a leak).
KEY_FRAGMENTS = (API_KEY, API_KEY[len(API_KEY) // 4 : -len(API_KEY) // 4])


def manifest(folder: Path, rows: int = 2) -> Path:
    make_image(folder / "ref.png")
    lines = [["id", "prompt", "image", "seconds"]]
    lines += [["r0", "a kite over the sea", "ref.png", "4"]]
    lines += [[f"s{n}", f"a boat, take {n}", "", "8"] for n in range(1, rows)]
    return write_csv(folder / "night.csv", lines)


def assert_no_key_anywhere(folder: Path, *outputs: Invocation) -> None:
    for output in outputs:
        for fragment in KEY_FRAGMENTS:
            assert fragment not in output.stdout and fragment not in output.stderr
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for fragment in KEY_FRAGMENTS:
                assert fragment.encode() not in data, f"the API key is in {path}"


# --------------------------------------------------------------------------- the key stays secret


def test_the_key_is_never_printed_logged_or_written_whatever_happens(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    good = start_mock()
    path = manifest(tmp_path)
    log = tmp_path / "batchgen.log"
    outputs = [
        invoke("validate", path),
        invoke("run", path, "--base-url", good.base_url, "--dry-run"),
        invoke("run", path, "--base-url", good.base_url, *FAST, "--log-file", log),
        invoke("poll", tmp_path / "night.results.csv", "--base-url", good.base_url, *FAST),
        invoke(
            "download",
            tmp_path / "night.results.csv",
            "--to",
            tmp_path / "videos",
            "--base-url",
            good.base_url,
            *FAST,
            "--poll-interval",
            "0.05",
        ),
        invoke("report", tmp_path / "night.results.csv", "--csv", tmp_path / "report.csv"),
    ]
    assert outputs[2].exit_code == 0, outputs[2].output
    assert set(good.state.auth_headers_seen) == {f"Bearer {API_KEY}"}  # it was really used

    # a bad manifest
    bad = write_csv(tmp_path / "bad.csv", [["id", "prompt", "seconds"], ["x", "", "5"]])
    outputs.append(invoke("run", bad, "--base-url", good.base_url, "--log-file", log))
    assert outputs[-1].exit_code == 2

    # 401: this provider wants another auth scheme than the profile sends
    strict = start_mock(MockConfig(profile=_profile_with_scheme("Token")))
    second = manifest(tmp_path / "401")
    outputs.append(invoke("run", second, "--base-url", strict.base_url, *FAST, "--log-file", log))
    states = read_ledger(tmp_path / "401" / "night.results.csv")
    assert {s["status"] for s in states.values()} == {"rejected"}
    assert "HTTP 401" in next(iter(states.values()))["error_message"]

    # other 4xx: batchgen validates for the relay, this provider only takes 4/8/12 seconds
    relay_rows = [["id", "prompt", "seconds"], ["long", "a fifteen second shot", "15"]]
    (tmp_path / "4xx").mkdir()
    relay = write_csv(tmp_path / "4xx" / "relay.csv", relay_rows)
    outputs.append(invoke("run", relay, "--profile", "relay", "--base-url", good.base_url, *FAST))
    assert read_ledger(tmp_path / "4xx" / "relay.results.csv")["long"]["status"] == "rejected"

    # nobody listening
    third = manifest(tmp_path / "down")
    closed = f"http://127.0.0.1:{_closed_port()}/v1"
    outputs.append(invoke("run", third, "--base-url", closed, *FAST, "--log-file", log))
    assert outputs[-1].exit_code == 1
    assert {s["status"] for s in read_ledger(tmp_path / "down" / "night.results.csv").values()} == {
        "error"
    }

    # another run holds the lock
    with Ledger.open(tmp_path / "night.results.csv"):
        outputs.append(invoke("run", path, "--base-url", good.base_url, *FAST))
    assert outputs[-1].exit_code == 3

    # no key at all, and --mock
    outputs.append(invoke("run", path, "--base-url", good.base_url, env={"OPENAI_API_KEY": ""}))
    assert outputs[-1].exit_code == 2

    assert log.exists() and log.stat().st_size > 0
    assert_no_key_anywhere(tmp_path, *outputs)


def _profile_with_scheme(scheme: str) -> Profile:
    text = resources.files("batchgen").joinpath("profiles", "openai.yaml").read_text()
    return parse_profile(text.replace("scheme: Bearer", f"scheme: {scheme}"), source="test")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def _echoing_relay(kind: str) -> web.Application:
    """A hostile or careless relay that quotes the credential back in its answer."""

    async def create(request: web.Request) -> web.Response:
        await request.read()
        token = request.headers.get("Authorization", "")
        if kind == "json-401":
            body = {"error": {"message": f"Invalid token: {token}", "code": "invalid_api_key"}}
            return web.json_response(body, status=401)
        if kind == "html-400":  # long enough that an excerpt cuts the key in two
            page = "<html><body>" + "x" * 140 + f" {token} </body></html>"
            return web.Response(text=page, status=400, content_type="text/html")
        return web.json_response({"msg": f"token {token} accepted", "data": None})  # 200, no id

    app = web.Application()
    app.router.add_post("/v1/videos", create)
    return app


@pytest.mark.parametrize("kind", ["json-401", "html-400", "200-without-id"])
def test_a_provider_quoting_the_key_back_does_not_put_it_in_the_results(
    tmp_path: Path, invoke: Invoke, kind: str
) -> None:
    path = manifest(tmp_path)
    with AppThread(_echoing_relay(kind)) as relay:
        result = invoke(
            "run",
            path,
            "--base-url",
            f"{relay.base_url}/v1",
            *FAST,
            "--profile",
            "relay",
        )
    assert result.exit_code == 1
    states = read_ledger(tmp_path / "night.results.csv")
    assert {s["status"] for s in states.values()} <= {"rejected", "unresolved"}
    assert_no_key_anywhere(tmp_path, result)
    assert API_KEY[:16] not in (tmp_path / "night.results.csv").read_text(encoding="utf-8-sig")


# --------------------------------------------------------------------------- plain http


@pytest.mark.parametrize(
    "url",
    [
        "http://videos.example.com/v1",
        "http://10.0.0.7:8000/v1",
        "http://127.0.0.1.nip.io/v1",  # a name, not the loopback address
        "http://localhost.evil.example/v1",
        "http://127.0.0.1@evil.example/v1",  # userinfo, then the real host
        "HTTP://VIDEOS.EXAMPLE.COM/v1",
    ],
)
def test_plain_http_to_another_host_is_refused_unless_allowed(
    tmp_path: Path, invoke: Invoke, url: str
) -> None:
    path = manifest(tmp_path)
    refused = invoke("run", path, "--base-url", url, "--dry-run")
    assert refused.exit_code == 2
    assert "clear text" in refused.stderr and "--allow-insecure" in refused.stderr
    allowed = invoke("run", path, "--base-url", url, "--dry-run", "--allow-insecure")
    assert allowed.exit_code == 0, allowed.output
    assert "nothing was sent" in allowed.stdout
    assert_no_key_anywhere(tmp_path, refused, allowed)


def test_plain_http_from_the_manifest_or_environment_is_refused_too(
    tmp_path: Path, invoke: Invoke
) -> None:
    manifest(tmp_path)
    yaml_manifest = tmp_path / "night.yaml"
    yaml_manifest.write_text("base_url: http://relay.example.com/v1\nsource: night.csv\n")
    # even once the operator allows the manifest's address
    allow = ("--allow-base-url", "http://relay.example.com")
    from_manifest = invoke("run", yaml_manifest, "--dry-run", *allow)
    assert from_manifest.exit_code == 2 and "clear text" in from_manifest.stderr
    from_env = invoke(
        "run",
        tmp_path / "night.csv",
        "--dry-run",
        env={"OPENAI_BASE_URL": "http://relay.example.com/v1"},
    )
    assert from_env.exit_code == 2 and "clear text" in from_env.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_to_this_machine_is_fine(tmp_path: Path, invoke: Invoke, host: str) -> None:
    result = invoke("run", manifest(tmp_path), "--base-url", f"http://{host}:9/v1", "--dry-run")
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- TLS is verified


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 (made by openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_a_self_signed_certificate_is_refused_with_a_tls_error(
    tmp_path: Path, invoke: Invoke, self_signed: ssl.SSLContext
) -> None:
    app = create_app(MockConfig())
    state = app[STATE_KEY]
    path = manifest(tmp_path, rows=3)
    with AppThread(app, self_signed) as server:
        # control: the server does speak TLS, to a client that trusts its certificate
        trusting = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        assert asyncio.run(_status_of(f"{server.base_url}/v1/videos", trusting)) == 401

        result = invoke("run", path, "--base-url", f"{server.base_url}/v1", *FAST)
    assert result.exit_code == 1, result.output
    states = read_ledger(tmp_path / "night.results.csv")
    assert {s["status"] for s in states.values()} == {"error"}
    assert all("TLS error" in s["error_message"] for s in states.values())
    assert all("certificate" in s["error_message"] for s in states.values())
    assert state.create_requests == 0  # nothing got through the handshake
    assert_no_key_anywhere(tmp_path, result)


async def _status_of(url: str, context: ssl.SSLContext) -> int:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, ssl=context) as response,
    ):
        return response.status


def test_no_code_path_turns_certificate_checks_off() -> None:
    source = Path(VideoClient.__module__.replace(".", "/") + ".py")
    package = Path(__file__).resolve().parents[1] / source.parent
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for weakening in ("ssl=False", "verify_ssl", "CERT_NONE", "check_hostname = False"):
            assert weakening not in text, f"{path.name} weakens TLS: {weakening}"


# --------------------------------------------------------------------------- redirects


class Recorder:
    """An origin that records what it was sent: a CDN, or an attacker's host. Under
    ``/v1/old/`` it redirects to itself (same origin) instead."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        async def video(request: web.Request) -> web.StreamResponse:
            self.headers.append(dict(request.headers))
            if request.path.endswith("/content"):
                return web.Response(body=MP4)
            return web.json_response({"id": "video_1", "status": "completed", "progress": 100})

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPFound(request.path_qs.replace("/v1/old/", "/v1/", 1))

        app = web.Application()
        app.router.add_get("/v1/videos/{video_id}", video)
        app.router.add_get("/v1/videos/{video_id}/content", video)
        app.router.add_post("/v1/videos", video)
        app.router.add_get("/v1/old/{tail:.*}", moved)
        return app


MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


def redirector(target: Callable[[], str]) -> web.Application:
    """The provider: GETs answered 302, POSTs 307 (method kept), to ``target()`` + path."""

    async def hop(request: web.Request) -> web.Response:
        location = target() + request.path_qs
        if request.method == "GET":
            raise web.HTTPFound(location)
        raise web.HTTPTemporaryRedirect(location)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hop)
    return app


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    recording = Recorder()
    with AppThread(recording.app()) as server:
        yield recording, server.base_url


@pytest.fixture
def provider_url(recorder: tuple[Recorder, str]) -> Iterator[str]:
    """A provider on 127.0.0.1 that redirects everything to the recorder (another port:
    another origin)."""
    with AppThread(redirector(lambda: recorder[1])) as first:
        yield f"{first.base_url}/v1"


def _client(session: aiohttp.ClientSession, base_url: str) -> VideoClient:
    return VideoClient(session, base_url, load_profile("openai"), Secret(API_KEY))


async def _retrieve(base_url: str) -> str:
    async with aiohttp.ClientSession() as session:
        return (await asyncio.wait_for(_client(session, base_url).retrieve("video_1"), 30)).id


def _has_auth(headers: dict[str, str]) -> bool:
    return any(name.lower() == "authorization" for name in headers) or any(
        API_KEY in value for value in headers.values()
    )


def test_a_redirect_to_another_origin_never_carries_the_key(
    recorder: tuple[Recorder, str], provider_url: str
) -> None:
    assert asyncio.run(_retrieve(provider_url)) == "video_1"
    assert len(recorder[0].headers) == 1
    assert not _has_auth(recorder[0].headers[0])


def test_a_download_redirected_to_a_cdn_never_carries_the_key(
    tmp_path: Path, recorder: tuple[Recorder, str], provider_url: str
) -> None:
    async def download() -> int:
        async with aiohttp.ClientSession() as session:
            job = _client(session, provider_url).download("video_1", tmp_path / "v.mp4")
            return (await asyncio.wait_for(job, 30)).size_bytes

    assert asyncio.run(download()) == len(MP4)
    assert len(recorder[0].headers) == 1
    assert not _has_auth(recorder[0].headers[0])


def test_a_redirected_create_is_not_followed(
    recorder: tuple[Recorder, str], provider_url: str
) -> None:
    """A POST is a purchase: it is never replayed to wherever a redirect points."""

    async def create() -> None:
        job = Job(key="k", row=2, fields={"prompt": "p", "model": "sora-2"})
        async with aiohttp.ClientSession() as session:
            await asyncio.wait_for(_client(session, provider_url).create(job, "k"), 30)

    with pytest.raises(RejectedError, match="307"):
        asyncio.run(create())
    assert recorder[0].headers == []


def test_a_redirect_within_the_same_origin_keeps_the_key(recorder: tuple[Recorder, str]) -> None:
    """Control for the tests above: the key is dropped because the origin changed."""
    assert asyncio.run(_retrieve(f"{recorder[1]}/v1/old")) == "video_1"
    assert recorder[0].headers[0].get("Authorization") == f"Bearer {API_KEY}"


# --------------------------------------------------------------------------- formulas


def test_prompts_that_look_like_formulas_are_sent_and_recorded_verbatim(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    """The results file is the machine-readable log a rerun resumes from: it keeps the
    user's text exactly (a prefixed apostrophe would change the prompt and the row's
    content). Neutralising formulas is the report exports' job (see test_report)."""
    prompts = ['=HYPERLINK("http://evil.example","click")', "+1 shot of a cat", "@sunrise"]
    rows = [["id", "prompt"]] + [[f"f{n}", p] for n, p in enumerate(prompts)]
    path = write_csv(tmp_path / "formulas.csv", rows)
    result = invoke("run", path, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    states = read_ledger(tmp_path / "formulas.results.csv")
    assert [states[f"f{n}"]["prompt"] for n in range(3)] == prompts
    assert sorted(mock_api.state.job_count_by_prompt()) == sorted(prompts)
    again = invoke("run", path, "--base-url", mock_api.base_url, *FAST)
    assert again.exit_code == 0 and mock_api.state.create_requests == 3  # resume still matches
