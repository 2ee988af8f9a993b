"""Setting batchgen up for the field as it is: the official API is gone, relays are the way.

Through the real CLI: the default profile no longer sends anywhere by itself, and says what
to do instead; every built-in profile loads, is listed, and the `relay` profile is new-api's
behaviour plus the seed page's fields.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchgen.mock import MockConfig, RunningMock
from batchgen.profile_files import builtin_profile_names, load_profile
from tests.helpers import FAST, Invoke, write_csv


def night(folder: Path) -> Path:
    return write_csv(folder / "night.csv", [["id", "prompt"], ["a", "A cat"]])


def test_openai_without_an_address_says_it_was_shut_down(tmp_path: Path, invoke: Invoke) -> None:
    result = invoke("run", night(tmp_path), *FAST)
    assert result.exit_code == 2
    message = result.stderr
    assert "OpenAI shut its Videos API down on 2026-09-24" in message
    assert "--profile new-api" in message and "--base-url" in message
    assert "batchgen doctor" in message and "Nothing was sent" in message
    assert not (tmp_path / "night.results.csv").exists()


def test_a_dry_run_without_an_address_still_shows_the_plan(tmp_path: Path, invoke: Invoke) -> None:
    result = invoke("run", night(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "no address yet" in result.output


def test_the_openai_profile_still_works_against_a_gateway_the_operator_names(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    result = invoke("run", night(tmp_path), *FAST, env={"OPENAI_BASE_URL": mock_api.base_url})
    assert result.exit_code == 0, result.output
    assert mock_api.state.jobs_created == 1


def test_every_builtin_profile_loads_and_the_relay_is_new_api_plus_its_fields() -> None:
    assert set(builtin_profile_names()) >= {"openai", "new-api", "relay", "litellm", "sora-app"}
    new_api, relay = load_profile("new-api"), load_profile("relay")
    assert relay.statuses == new_api.statuses and relay.not_found == new_api.not_found
    assert relay.http == new_api.http and not relay.can_list
    assert {"style", "watermark", "private"} <= set(relay.extra_fields)
    assert {"10", "15"} <= set(relay.seconds)
    assert load_profile("sora-app").seconds == ("10", "15", "25")
    assert not load_profile("sora-app").video.content_endpoint


def test_a_users_profile_extends_a_builtin_one_and_refuses_misspelt_keys(
    tmp_path: Path, invoke: Invoke
) -> None:
    mine = tmp_path / "my-relay.yaml"
    mine.write_text("name: my-relay\nextends: new-api\nseconds: ['5', '10']\n", encoding="utf-8")
    profile = load_profile(str(mine))
    assert profile.name == "my-relay" and profile.seconds == ("5", "10")
    assert profile.not_found.codes == frozenset({"task_not_exist"})
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\nextends: new-api\ncan_lsit: true\n", encoding="utf-8")
    result = invoke("validate", night(tmp_path), "--profile", typo)
    assert result.exit_code == 2
    assert "unknown key(s) can_lsit" in result.stderr


def test_polls_keep_to_the_relays_refresh_period(
    tmp_path: Path, invoke: Invoke, start_mock: Callable[..., RunningMock]
) -> None:
    profile = tmp_path / "quick-relay.yaml"
    profile.write_text("name: quick-relay\nextends: new-api\nrefresh_seconds: 0.5\n", "utf-8")
    relay = start_mock(MockConfig.for_profile(load_profile(str(profile)), job_duration=1.5))
    rows = [["id", "prompt"], *([f"r{n}", f"a kite, take {n}"] for n in range(3))]
    manifest = write_csv(tmp_path / "night.csv", rows)
    follow = ("--wait", "--poll-interval", "0.02", "--poll-rpm", "100000", "--timeout", "60")
    result = invoke(
        "run", manifest, "--profile", profile, "--base-url", relay.base_url, *FAST, *follow
    )
    assert result.exit_code == 0, result.output
    # unbounded, a 0.02 s interval would poll each job ~75 times over its 1.5 s; at one look
    # per 0.5 s refresh it is a handful
    assert relay.state.requests_by_endpoint["retrieve"] <= 3 * 8
