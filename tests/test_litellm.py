"""batchgen end to end through the real LiteLLM proxy (``litellm[proxy]``, pinned in
pyproject's ``litellm`` extra) in front of the simulated API, with ``--profile litellm``.

The proxy lives in its own venv (its pins would fight ours): ``make test`` builds
``.venv-litellm`` and sets ``LITELLM_BIN``; ``make test-litellm`` runs only these tests
(``pytest -m litellm``). Without the proxy they are skipped, saying why, or fail when
``CI=true``. Starting the proxy takes 9-20 s, so it starts once for the module.
"""

from __future__ import annotations

import csv
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchgen.mock import Faults, MockConfig, MockThread, RunningMock
from tests.helpers import make_image, write

pytestmark = [pytest.mark.litellm, pytest.mark.timeout(300)]

LITELLM_BIN = os.environ.get("LITELLM_BIN", "")
MASTER_KEY = "sk-litellm-master-0123456789"
PROXY_START_SECONDS = 120.0  # 9-20 s seen; a loaded CI machine gets room
RUN_SECONDS = 180.0
#: The proxy's models: sora-2 reaches a well-behaved simulated API, sora-2-pro one whose
#: every create breaks with a 500 after the request arrived (the outcome is unknown).
PROXY_CONFIG = """\
model_list:
  - model_name: sora-2
    litellm_params: {{model: openai/sora-2, api_base: "{good}", api_key: sk-upstream}}
  - model_name: sora-2-pro
    litellm_params: {{model: openai/sora-2-pro, api_base: "{broken}", api_key: sk-upstream}}
general_settings: {{master_key: {key}}}
litellm_settings: {{telemetry: false, num_retries: 0}}  # else it resends a failed create itself
router_settings: {{num_retries: 0, disable_cooldowns: true}}
"""


@dataclass
class Stack:
    """The proxy's address and the simulated API whose creates all break."""

    proxy_url: str
    broken: RunningMock


def require_litellm() -> str:
    """The proxy's executable; fail under CI, skip elsewhere, with the fix, when absent."""
    if LITELLM_BIN and Path(LITELLM_BIN).is_file():
        return LITELLM_BIN
    missing = (
        f"the LiteLLM proxy is not installed (LITELLM_BIN={LITELLM_BIN or 'unset'}): "
        "make test-litellm installs it into .venv-litellm"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {missing}", pytrace=False)
    pytest.skip(missing)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail at once if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Authorization": "Bearer probe"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready within {timeout:g} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without a developer's provider settings, talking to loopback directly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.pop("DATABASE_URL", None)  # no database: the proxy runs without prisma
    return {**env, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **extra}


def start(command: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(env))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``batchgen serve-mock``, a simulated API that breaks every create, and the proxy."""
    litellm = require_litellm()
    folder = tmp_path_factory.mktemp("litellm")
    mock_port, proxy_port = free_port(), free_port()
    mock_cmd = [sys.executable, "-m", "batchgen", "serve-mock", "--port", str(mock_port)]
    mock = start([*mock_cmd, "--job-seconds", "2"], folder / "mock.log", clean_env())
    broken = MockThread(MockConfig(faults=Faults(error_500=1.0)))
    config = folder / "litellm.yaml"
    good_url = f"http://127.0.0.1:{mock_port}/v1"
    try:
        broken_mock = broken.__enter__()
        write(
            config, PROXY_CONFIG.format(good=good_url, broken=broken_mock.base_url, key=MASTER_KEY)
        )
        proxy_env = clean_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
        proxy_cmd = [litellm, "--config", str(config), "--host", "127.0.0.1"]
        proxy = start([*proxy_cmd, "--port", str(proxy_port)], folder / "proxy.log", proxy_env)
        try:
            wait_ready(f"{good_url}/videos", mock, 30, folder / "mock.log")
            ready = f"http://127.0.0.1:{proxy_port}/health/readiness"
            wait_ready(ready, proxy, PROXY_START_SECONDS, folder / "proxy.log")
            yield Stack(f"http://127.0.0.1:{proxy_port}/v1", broken_mock)
        finally:
            stop(proxy)
    finally:
        stop(mock)
        broken.__exit__(None, None, None)


def run_batch(manifest: Path, stack: Stack, *extra: str) -> subprocess.CompletedProcess[str]:
    """``batchgen run MANIFEST --profile litellm`` through the proxy, with its master key."""
    command = [sys.executable, "-m", "batchgen", "run", str(manifest), "--profile", "litellm"]
    return subprocess.run(
        [*command, "--base-url", stack.proxy_url, "--no-progress", "--backoff", "0.05", *extra],
        env=clean_env(OPENAI_API_KEY=MASTER_KEY),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )


def latest(results: Path) -> dict[str, dict[str, str]]:
    """Each row's last line of the results file."""
    with results.open(encoding="utf-8-sig", newline="") as handle:
        return {line["key"]: line for line in csv.DictReader(handle)}


def test_a_batch_runs_end_to_end_through_litellm_and_every_video_is_downloaded(
    stack: Stack, tmp_path: Path
) -> None:
    make_image(tmp_path / "ref.png", (1280, 720))
    manifest = write(
        tmp_path / "night.yaml",
        "rows:\n"
        "  - {id: boat, prompt: A paper boat on a rainy street}\n"
        "  - {id: hills, prompt: Sunset over hills, size: 1280x720, image: ref.png}\n"
        "  - {id: snow, prompt: The boat in snow, remix_of: boat}\n",
    )
    videos = tmp_path / "videos"

    done = run_batch(manifest, stack, "--wait", "--download", str(videos), "--timeout", "120")

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in videos.iterdir()) == ["boat.mp4", "hills.mp4", "snow.mp4"]
    rows = latest(tmp_path / "night.results.csv")
    for name in ("boat", "hills", "snow"):
        row = rows[name]
        assert row["status"] == "downloaded"
        assert row["job_id"].startswith("video_bGl0ZWxsbT")  # base64 of "litellm:"
        content = (videos / f"{name}.mp4").read_bytes()
        assert hashlib.sha256(content).hexdigest() == row["sha256"] and content
    assert MASTER_KEY not in done.stdout + done.stderr


def test_a_create_of_unknown_outcome_through_litellm_ends_unresolved_and_is_not_resent(
    stack: Stack, tmp_path: Path
) -> None:
    manifest = write(
        tmp_path / "pro.yaml", "rows:\n  - {id: pro, prompt: A fox, model: sora-2-pro}\n"
    )
    before = stack.broken.state.create_requests

    first = run_batch(manifest, stack)
    again = run_batch(manifest, stack)

    assert first.returncode == 1, first.stdout + first.stderr
    assert latest(tmp_path / "pro.results.csv")["pro"]["status"] == "unresolved"
    assert again.returncode == 1
    # one create reached the provider: LiteLLM did not retry it, batchgen did not resend it
    assert stack.broken.state.create_requests - before == 1


def test_doctor_through_litellm_sees_no_list_and_its_content_and_creates_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    manifest = write(tmp_path / "one.yaml", "rows:\n  - {id: one, prompt: A kite}\n")
    assert run_batch(manifest, stack, "--wait", "--timeout", "120").returncode == 0
    job_id = latest(tmp_path / "one.results.csv")["one"]["job_id"]
    command = [sys.executable, "-m", "batchgen", "doctor", "--profile", "litellm"]
    before = stack.broken.state.create_requests

    doctor = subprocess.run(
        [*command, "--base-url", stack.proxy_url, "--job-id", job_id],
        env=clean_env(OPENAI_API_KEY=MASTER_KEY),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )

    out = doctor.stdout + doctor.stderr
    assert doctor.returncode == 0, out
    assert "key: accepted" in out and "can_list: false fits" in out
    # an id it cannot decode goes to api.openai.com: a 500, so a lost job is never "lost"
    assert "unknown id" in out and "HTTP 500" in out and "not a 4xx" in out
    assert "fits video.content_endpoint: true" in out
    assert stack.broken.state.create_requests == before
