"""``batchgen doctor``: a provider checked against a profile, through the real CLI, against
the simulated API in each flavour, with GET requests only (never a create)."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

from batchgen.mock import MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import API_KEY, Invoke, write

StartMock = Callable[..., RunningMock]
PURCHASES = ("create", "remix")


def made_job(mock: RunningMock, prompt: str = "a calm sea") -> str:
    """A finished job at the simulated provider, made by the test (not by doctor)."""
    body = json.dumps({"prompt": prompt, "model": "sora-2", "seconds": "4", "size": "720x1280"})
    request = urllib.request.Request(
        f"{mock.base_url}/videos",
        data=body.encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        job_id = str(json.load(answer)["id"])
    return job_id


def purchases(mock: RunningMock) -> int:
    """Requests the simulated provider would bill: creates and remixes."""
    return sum(mock.state.requests_by_endpoint[name] for name in PURCHASES)


def doctor(invoke: Invoke, mock: RunningMock, *args: str) -> tuple[int, str]:
    before = purchases(mock)
    result = invoke("doctor", "--base-url", mock.base_url, *args)
    assert purchases(mock) == before, "doctor sent a create"
    return result.exit_code, result.output


def test_the_official_flavour_fits_the_openai_profile_and_nothing_is_created(
    invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(job_duration=0))
    made_job(mock)

    code, out = doctor(invoke, mock, "--profile", "openai")

    assert code == 0, out
    assert "key: accepted" in out
    assert "can_list: true fits" in out
    assert "-> HTTP 404" in out and "fits not_found.statuses" in out
    assert "status maps to completed: fits statuses" in out
    assert "content endpoint: fits video.content_endpoint: true" in out
    assert out.count("fits previews") == 2  # thumbnail and spritesheet are real images
    assert "every setting checked fits" in out
    assert mock.state.requests_by_endpoint["create"] == 1  # the test's own, none of doctor's
    assert API_KEY not in out


def test_the_new_api_flavour_fits_the_new_api_profile(
    invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(
        MockConfig.for_profile(load_profile("new-api"), job_duration=0, refresh_seconds=0)
    )
    job_id = made_job(mock)

    code, out = doctor(invoke, mock, "--profile", "new-api", "--job-id", job_id)

    assert code == 0, out
    assert "can_list: false fits" in out
    assert "HTTP 400 task_not_exist" in out and "fits not_found.codes" in out
    assert "status maps to completed: fits statuses" in out  # its word is SUCCESS
    assert "served 65,536 bytes" in out
    assert "preview" not in out  # its proxy ignores variant=: the profile lists none


def test_a_relay_checked_with_the_openai_profile_is_told_what_to_change(
    invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(
        MockConfig.for_profile(load_profile("new-api"), job_duration=0, refresh_seconds=0)
    )
    job_id = made_job(mock)

    code, out = doctor(invoke, mock, "--profile", "openai", "--job-id", job_id)

    assert code == 1, out
    assert "the provider cannot list: use can_list: false" in out
    assert "add task_not_exist to not_found.codes" in out
    assert "add 'success': completed" in out
    assert "do not fit" in out and "extends: openai" in out


def test_without_a_finished_job_content_is_not_checked_and_says_how(
    invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig.for_profile(load_profile("new-api")))

    code, out = doctor(invoke, mock, "--profile", "new-api")

    assert code == 0, out
    assert "no finished job to look at: pass --job-id ID" in out
    assert mock.state.create_requests == 0
    # "unknown": its GET /v1/videos, a route new-api does not have
    assert set(mock.state.requests_by_endpoint) == {"unknown", "retrieve"}


def test_a_refused_key_exits_2_with_a_clear_message(
    invoke: Invoke, start_mock: StartMock, tmp_path: Path
) -> None:
    # the key goes in a header the provider does not read: it answers 401
    profile = write(
        tmp_path / "wrong-header.yaml",
        "name: wrong-header\nextends: openai\nauth: {header: X-Api-Key, scheme: ''}\n",
    )
    mock = start_mock(MockConfig(job_duration=0))

    code, out = doctor(invoke, mock, "--profile", str(profile))

    assert code == 2
    assert f"{mock.base_url} refused the key" in out and "HTTP 401" in out
    assert "Traceback" not in out


def test_a_provider_that_cannot_be_reached_exits_2(invoke: Invoke) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"

    result = invoke("doctor", "--profile", "new-api", "--base-url", url)

    assert result.exit_code == 2
    assert f"cannot reach {url}" in result.stderr
    assert "Traceback" not in result.output


def test_the_address_and_key_follow_runs_rules(invoke: Invoke, start_mock: StartMock) -> None:
    mock = start_mock(MockConfig(job_duration=0))

    no_address = invoke("doctor")
    from_env = invoke("doctor", env={"OPENAI_BASE_URL": mock.base_url})
    no_key = invoke("doctor", "--base-url", mock.base_url, env={"OPENAI_API_KEY": ""})
    clear_text = invoke("doctor", "--profile", "new-api", "--base-url", "http://relay.test/v1")

    assert no_address.exit_code == 2 and "shut its Videos API down" in no_address.stderr
    assert "batchgen doctor --profile P" in no_address.stderr
    assert from_env.exit_code == 0, from_env.output
    assert no_key.exit_code == 2 and "no API key" in no_key.stderr
    assert clear_text.exit_code == 2 and "--allow-insecure" in clear_text.stderr
    assert mock.state.auth_headers_seen == [f"Bearer {API_KEY}"] * len(mock.state.auth_headers_seen)
