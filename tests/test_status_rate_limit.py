"""A provider that limits status checks (GETs) on their own, as relays do per key or IP.

batchgen's status checks start at ``--poll-rpm`` and, on a 429, settle below the rate that
drew it. Against a simulated provider that allows status checks far fewer than that (a
sliding window over retrieve and list together, apart from its limit on creates), a night
through the real CLI follows every video to the end, draws only a few 429s before
settling, and never has a create refused for the status checks' sake: where the provider
lists (openai: 429 with Retry-After) and where it cannot (new-api: 429 without it).

Then the simulated API's window itself (retrieve and list counted together, creates
apart, each flavour's 429) and ``batchgen serve-mock --status-rate-limit-rpm``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock, running_mock
from batchgen.profile_files import load_profile
from tests.helpers import FakeClock, Invoke, call, write, write_csv

Start = Callable[..., RunningMock]
ROWS = 40
#: The limits' window: short, so that a refused check waits a second or two, not a minute.
WINDOW = 2.0
#: Status checks a minute each provider allows (in WINDOW: 10 and 1), far below --poll-rpm.
STATUS_RPM = {"new-api": 300, "openai": 30}
POLL_RPM = 30000  # a hundred times the limit: stepping down 20 % at a time would take 20 429s
#: The design's promise: the pacer settles below the rate that drew a 429, so a night
#: meets the limit a few times, not once per step down from --poll-rpm.
FEW_429S = 8
AUTH = {"Authorization": "Bearer sk-test"}


def manifest(folder: Path) -> Path:
    lines = [["id", "prompt"]] + [[f"r{n:03d}", f"lighthouse, take {n}"] for n in range(ROWS)]
    return write_csv(folder / "night.csv", lines)


def quick(folder: Path, name: str) -> Path:
    """``name``'s profile with status refreshed every second (new-api's 15 s would make the
    night minutes long); everything else, its 429s' missing Retry-After included, as is."""
    return write(folder / f"{name}-quick.yaml", f"extends: {name}\nrefresh_seconds: 1\n")


def limited(profile: Path, status_rpm: int, seed: int = 7) -> MockConfig:
    """The provider ``profile`` describes, allowing ``status_rpm`` status checks a minute and
    exactly the night's creates (counted apart: one status check counted with them would
    refuse a create)."""
    faults = Faults(
        seed=seed,
        rate_limit_rpm=ROWS,
        status_rate_limit_rpm=round(status_rpm * WINDOW / 60),
        rate_window=WINDOW,
    )
    profile_data = load_profile(str(profile))
    return MockConfig.for_profile(profile_data, faults=faults, job_duration=2, job_duration_min=1)


@pytest.mark.parametrize("name", ["openai", "new-api"])
def test_a_night_against_a_get_limit_draws_a_few_429s_and_follows_every_video(
    tmp_path: Path, invoke: Invoke, start_mock: Start, name: str
) -> None:
    path, profile = manifest(tmp_path), quick(tmp_path, name)
    mock = start_mock(limited(profile, STATUS_RPM[name]))

    result = invoke(
        "run", path, "--base-url", mock.base_url, "--profile", profile, "--rpm", "6000",
        "--poll-rpm", str(POLL_RPM), "--poll-interval", "0.5", "--timeout", "60", "--wait",
    )  # fmt: skip

    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    states = read_ledger(path.with_name("night.results.csv")).values()
    assert [s["status"] for s in states] == ["completed"] * ROWS  # every video followed
    assert mock.state.status_rate_limited <= FEW_429S  # met a few times, then settled
    assert mock.state.rate_limited_by_endpoint["create"] == 0  # creates never refused
    assert mock.state.jobs_created == mock.state.create_requests == ROWS


# --------------------------------------------------------------------------- the window


@pytest.mark.parametrize("name", ["openai", "new-api"])
async def test_status_checks_share_a_window_of_their_own_answered_in_the_flavour(
    name: str,
) -> None:
    profile = load_profile(name)
    faults = Faults(rate_limit_rpm=1, status_rate_limit_rpm=2)
    clock = FakeClock(5_000.0)
    async with (
        running_mock(MockConfig.for_profile(profile, faults=faults)) as mock,
        aiohttp.ClientSession(headers=AUTH) as session,
    ):
        mock.state.clock = clock
        videos = f"{mock.base_url}/videos"
        created, job, _ = await call(session, "POST", videos, json={"prompt": "a"})
        assert created == 200
        one = f"{videos}/{job['id']}"
        first, _, _ = await call(session, "GET", one)
        clock.advance(20.5)
        # the list, where there is one, counts with retrieves; elsewhere a second retrieve
        second, _, _ = await call(session, "GET", videos if profile.can_list else one)
        refused, body, response = await call(session, "GET", one)
        assert (first, second, refused) == (200, 200, 429)
        if profile.simulated.retry_after:  # until the first check leaves the window
            assert response.headers["Retry-After"] == "40"  # ceil(60 - 20.5)
            assert body["error"]["code"] == "rate_limit_exceeded"
        else:  # new-api: no Retry-After, its own words in its flat shape
            assert "Retry-After" not in response.headers
            assert body["message"] == profile.simulated.rate_limit_message
        clock.advance(39.5)
        assert (await call(session, "GET", one))[0] == 200  # the first check has left
        assert mock.state.status_rate_limited == mock.state.rate_limited == 1
        assert mock.state.rate_limited_by_endpoint["create"] == 0


def test_serve_mock_status_rate_limit_rpm_refuses_the_status_check_beyond_it() -> None:
    command = [sys.executable, "-m", "batchgen", "serve-mock", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--status-rate-limit-rpm", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        videos = server.stdout.readline().strip() + "/videos"  # the first line: its address
        assert [_get(videos) for _ in range(2)] == [200, 429]
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0


def _get(url: str) -> int:
    """The status of a GET to the local server (no proxy from the environment)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=AUTH), timeout=30) as response:
            json.loads(response.read())
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
