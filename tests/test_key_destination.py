"""The key goes only where the operator sent it.

A manifest (and the profile file or results record that travels with it) is written by
whoever handed it over; only the operator's own choices (``--base-url``, ``OPENAI_BASE_URL``,
``--profile FILE``, ``--allow-base-url``, ``BATCHGEN_ALLOWED_BASE_URLS``) may send the key
somewhere. Two simulated APIs on 127.0.0.1 stand in for the operator's relay and a stranger's
server: different ports, so different origins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.mock import MockConfig, RunningMock
from tests.helpers import Invoke

StartMock = Callable[..., RunningMock]
RETRY = ("--backoff", "0.01", "--max-attempts", "2")
FAST = ("--rpm", "100000", *RETRY)


def untouched(server: RunningMock) -> bool:
    """True when ``server`` saw no request at all, so never the key."""
    return not server.state.auth_headers_seen and not sum(
        server.state.requests_by_endpoint.values()
    )


def origin(server: RunningMock) -> str:
    """``http://127.0.0.1:PORT``: the server's address without its path."""
    return server.base_url.removesuffix("/v1")


def yaml_manifest(folder: Path, *settings: str) -> Path:
    lines = [*settings, "rows:", "  - id: a", "    prompt: a kite over the sea"]
    path = folder / "handed-over.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def stranger(start_mock: StartMock) -> RunningMock:
    """A server the manifest's author controls."""
    return start_mock(MockConfig())


def test_a_manifest_base_url_the_operator_did_not_choose_is_refused_before_sending(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, stranger: RunningMock
) -> None:
    path = yaml_manifest(tmp_path, f"base_url: {stranger.base_url}")
    result = invoke("run", path, *FAST, env={"OPENAI_BASE_URL": f"{mock_api.base_url}"})
    assert result.exit_code == 2
    host = origin(stranger)
    assert f"sends the API key to {host}" in result.stderr
    assert f"--allow-base-url {host}" in result.stderr
    assert "BATCHGEN_ALLOWED_BASE_URLS" in result.stderr
    assert untouched(stranger) and untouched(mock_api)
    assert not (tmp_path / "handed-over.results.csv").exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_operator_can_allow_the_manifests_address(
    tmp_path: Path, invoke: Invoke, stranger: RunningMock, how: str
) -> None:
    path = yaml_manifest(tmp_path, f"base_url: {stranger.base_url}")
    if how == "flag":
        result = invoke("run", path, *FAST, "--allow-base-url", origin(stranger))
    else:
        env = {"BATCHGEN_ALLOWED_BASE_URLS": f"https://other.example, {origin(stranger)}/"}
        result = invoke("run", path, *FAST, env=env)
    assert result.exit_code == 0, result.output
    assert stranger.state.jobs_created == 1


def test_an_allow_list_entry_matches_by_origin_not_by_path_or_host_alone(
    tmp_path: Path, invoke: Invoke, stranger: RunningMock
) -> None:
    path = yaml_manifest(tmp_path, f"base_url: {stranger.base_url}")
    other_port = origin(stranger).rsplit(":", 1)[0] + ":1"
    result = invoke("run", path, *FAST, "--allow-base-url", f"{other_port}/v1")
    assert result.exit_code == 2
    assert untouched(stranger)


def test_a_manifest_repeating_the_operators_address_is_fine(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = yaml_manifest(tmp_path, f"base_url: {mock_api.base_url}")
    result = invoke("run", path, *FAST, env={"OPENAI_BASE_URL": f"{mock_api.base_url}"})
    assert result.exit_code == 0, result.output
    assert mock_api.state.jobs_created == 1


def test_base_url_flag_still_wins_over_the_manifest(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, stranger: RunningMock
) -> None:
    path = yaml_manifest(tmp_path, f"base_url: {stranger.base_url}")
    result = invoke("run", path, *FAST, "--base-url", f"{mock_api.base_url}")
    assert result.exit_code == 0, result.output
    assert mock_api.state.jobs_created == 1 and untouched(stranger)


def _profile_file(folder: Path, base_url: str) -> Path:
    text = Path("batchgen/profiles/openai.yaml").read_text(encoding="utf-8")
    lines = [
        f"default_base_url: {base_url}" if line.startswith("default_base_url:") else line
        for line in text.splitlines()
    ]
    path = folder / "their-profile.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_profile_file_named_by_the_manifest_cannot_choose_the_address(
    tmp_path: Path, invoke: Invoke, stranger: RunningMock
) -> None:
    profile = _profile_file(tmp_path, f"{stranger.base_url}")
    path = yaml_manifest(tmp_path, f"profile: {profile}")
    result = invoke("run", path, *FAST)
    assert result.exit_code == 2
    assert "default_base_url: of profile" in result.stderr
    assert untouched(stranger)


def test_a_profile_file_the_operator_passes_may_choose_the_address(
    tmp_path: Path, invoke: Invoke, stranger: RunningMock
) -> None:
    profile = _profile_file(tmp_path, f"{stranger.base_url}")
    path = yaml_manifest(tmp_path)
    result = invoke("run", path, *FAST, "--profile", profile)
    assert result.exit_code == 0, result.output
    assert stranger.state.jobs_created == 1


def test_poll_refuses_a_results_record_pointing_elsewhere(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, stranger: RunningMock
) -> None:
    path = yaml_manifest(tmp_path)
    assert invoke("run", path, *FAST, "--base-url", mock_api.base_url).exit_code == 0
    record = tmp_path / "handed-over.results.provider.json"
    assert json.loads(record.read_text("utf-8"))["base_url"] == mock_api.base_url
    record.write_text(json.dumps({"profile": "openai", "base_url": stranger.base_url}), "utf-8")
    results = tmp_path / "handed-over.results.csv"
    for command in (("poll", results), ("download", results, "--to", tmp_path / "v")):
        refused = invoke(*command, *RETRY)
        assert refused.exit_code == 2, refused.output
        assert "handed-over.results.provider.json sends the API key to" in refused.stderr
    assert untouched(stranger)
    allowed = invoke("poll", results, *RETRY, "--allow-base-url", origin(mock_api))
    assert allowed.exit_code == 2  # the record now names the stranger: allowing ours is no help
    polled = invoke("poll", results, *RETRY, "--base-url", mock_api.base_url)
    assert polled.exit_code == 0, polled.output


def test_poll_follows_a_record_the_operator_chose_by_environment(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = yaml_manifest(tmp_path)
    env = {"OPENAI_BASE_URL": mock_api.base_url}
    assert invoke("run", path, *FAST, env=env).exit_code == 0
    polled = invoke("poll", tmp_path / "handed-over.results.csv", *RETRY, env=env)
    assert polled.exit_code == 0, polled.output
    seen = mock_api.state.requests_by_endpoint
    assert seen["list"] + seen["retrieve"] >= 1


def test_mock_ignores_the_manifests_address(
    tmp_path: Path, invoke: Invoke, stranger: RunningMock
) -> None:
    path = yaml_manifest(tmp_path, f"base_url: {stranger.base_url}")
    result = invoke("run", path, "--mock", *FAST, env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    assert untouched(stranger)


def test_a_malformed_allow_list_entry_is_a_usage_error(tmp_path: Path, invoke: Invoke) -> None:
    path = yaml_manifest(tmp_path, "base_url: https://relay.example/v1")
    result = invoke("run", path, "--allow-base-url", "relay.example")
    assert result.exit_code == 2
    assert "'relay.example' is not an http(s) address" in result.stderr
