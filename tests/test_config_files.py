"""Config files through the real CLI: the user's config.toml and a project's batchgen.toml.

Precedence: flags, the manifest, the environment, the project file, the user's file, the
profile's defaults. A project file travels with the manifest, so it may not decide where the
key goes; the user's own file may. Every test points XDG_CONFIG_HOME at its own tmp folder,
so the developer's real config is never read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.ledger import read_ledger
from batchgen.mock import RunningMock
from tests.helpers import Invocation, Invoke

FLAG, MANIFEST, ENV, PROJECT, USER = "flag", "manifest", "env", "project", "user"
LAYERS = (FLAG, MANIFEST, ENV, PROJECT, USER)


class Setup:
    """A manifest in a project folder, the user's config folder, and the CLI run with both."""

    def __init__(self, tmp_path: Path, invoke: Invoke) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.xdg = tmp_path / "xdg"
        self.invoke_cli = invoke
        self.manifest = self.write_manifest()

    def write_manifest(self, *settings: str) -> Path:
        lines = [*settings, "rows:", "  - id: a", "    prompt: a kite over the sea"]
        path = self.project / "night.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def project_file(self, text: str) -> Path:
        path = self.project / "batchgen.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def user_file(self, text: str) -> Path:
        path = self.xdg / "batchgen" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def invoke(self, *args: str | Path, env: dict[str, str] | None = None) -> Invocation:
        return self.invoke_cli(*args, env={"XDG_CONFIG_HOME": str(self.xdg), **(env or {})})

    def dry_run(self, *args: str, env: dict[str, str] | None = None) -> Invocation:
        return self.invoke("run", self.manifest, "--dry-run", *args, env=env)


@pytest.fixture
def setup(tmp_path: Path, invoke: Invoke) -> Setup:
    return Setup(tmp_path, invoke)


def _set_layers(setup: Setup, key: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Set ``key`` in every layer of ``values``; the flag (if any) and the environment back."""
    if MANIFEST in values:
        setup.write_manifest(f"{key}: {values[MANIFEST]}")
    if PROJECT in values:
        setup.project_file(f'{key} = "{values[PROJECT]}"\n')
    if USER in values:
        setup.user_file(f'{key} = "{values[USER]}"\n')
    env = {"OPENAI_BASE_URL": values[ENV]} if ENV in values else {}
    return values.get(FLAG, ""), env


@pytest.mark.parametrize("winner", LAYERS)
def test_the_base_url_comes_from_the_first_layer_that_sets_it(setup: Setup, winner: str) -> None:
    # every layer at or below the winner sets an address of its own; the winner's is used
    below = LAYERS[LAYERS.index(winner) :]
    values = {layer: f"https://{layer}.example.com/v1" for layer in below}
    flag, env = _set_layers(setup, "base_url", values)
    # the addresses a manifest or project file names must be allowed: the user allows all
    allowed = ",".join(f"https://{layer}.example.com" for layer in LAYERS)
    args = ("--base-url", flag) if flag else ()
    result = setup.dry_run(*args, env={**env, "BATCHGEN_ALLOWED_BASE_URLS": allowed})
    assert result.exit_code == 0, result.output
    assert f"dry run against https://{winner}.example.com/v1" in result.stdout


@pytest.mark.parametrize("winner", [FLAG, MANIFEST, PROJECT, USER])
def test_the_profile_comes_from_the_first_layer_that_names_it(setup: Setup, winner: str) -> None:
    names = {FLAG: "sora-app", MANIFEST: "litellm", PROJECT: "new-api", USER: "relay"}
    below = [layer for layer in names if list(names).index(layer) >= list(names).index(winner)]
    flag, _ = _set_layers(setup, "profile", {layer: names[layer] for layer in below})
    args = ("--profile", flag) if flag else ()
    result = setup.dry_run(*args, "--base-url", "https://relay.example.com/v1")
    assert result.exit_code == 0, result.output
    assert f"(profile {names[winner]})" in result.stdout


def test_without_any_layer_the_profile_is_the_default(setup: Setup) -> None:
    result = setup.dry_run("--base-url", "https://relay.example.com/v1")
    assert "(profile openai)" in result.stdout


def test_a_project_files_base_url_is_refused_unless_allowed(setup: Setup) -> None:
    setup.project_file('base_url = "https://stranger.example.com/v1"\n')
    refused = setup.dry_run()
    assert refused.exit_code == 2
    assert "batchgen.toml's base_url sends the API key to https://stranger.example.com" in (
        refused.stderr
    )
    assert "Traceback" not in refused.output
    setup.user_file('allowed_base_urls = ["https://stranger.example.com"]\n')
    allowed = setup.dry_run()
    assert allowed.exit_code == 0, allowed.output
    assert "dry run against https://stranger.example.com/v1" in allowed.stdout


def test_the_users_own_base_url_is_trusted(setup: Setup) -> None:
    setup.user_file('base_url = "https://my-relay.example.com/v1"\n')
    result = setup.dry_run()
    assert result.exit_code == 0, result.output
    assert "dry run against https://my-relay.example.com/v1" in result.stdout


@pytest.mark.parametrize(
    "line", ['allowed_base_urls = ["https://stranger.example.com"]', 'api_key_env = "THEIR_KEY"']
)
def test_a_project_file_may_not_say_where_the_key_goes(setup: Setup, line: str) -> None:
    path = setup.project_file(line + "\n")
    result = setup.dry_run("--base-url", "https://relay.example.com/v1")
    assert result.exit_code == 2
    key = line.split(" ")[0]
    assert f"{path}: {key}: decides where the API key goes" in result.stderr
    assert "Traceback" not in result.output


def test_the_users_file_names_the_keys_variable(setup: Setup, mock_api: RunningMock) -> None:
    setup.user_file(f'api_key_env = "RELAY_KEY"\nbase_url = "{mock_api.base_url}"\n')
    result = setup.invoke("run", setup.manifest, "--rpm", "100000", env={"RELAY_KEY": "sk-r"})
    assert result.exit_code == 0, result.output
    assert mock_api.state.auth_headers_seen == ["Bearer sk-r"]


def test_unknown_and_mistyped_keys_are_errors_naming_file_and_key(setup: Setup) -> None:
    path = setup.project_file('concurency = 8\nrpm = "fast"\nwebhook = "https://x"\n')
    result = setup.dry_run("--base-url", "https://relay.example.com/v1")
    assert result.exit_code == 2
    assert f"{path}: concurency: unknown setting (did you mean concurrency?)" in result.stderr
    assert f"{path}: rpm: expected a number, not str" in result.stderr
    assert f"{path}: webhook: unknown setting" in result.stderr


def test_a_value_out_of_the_options_range_is_refused_like_the_flag(setup: Setup) -> None:
    path = setup.project_file("concurrency = 0\n")
    result = setup.dry_run("--base-url", "https://relay.example.com/v1")
    assert result.exit_code == 2
    assert f"{path}: concurrency: 0 is not in the range 1<=x<=512" in result.stderr


def test_broken_toml_is_reported_with_its_line(setup: Setup) -> None:
    path = setup.project_file('rpm = 60\nprofile = "new-api\n')
    result = setup.dry_run()
    assert result.exit_code == 2
    assert f"{path}: not valid TOML" in result.stderr and "line 2" in result.stderr


def test_the_project_file_follows_and_downloads_with_no_flags(
    setup: Setup, mock_api: RunningMock
) -> None:
    # the cron line's flags, moved into the project file: the run waits and downloads
    setup.project_file(
        "rpm = 100000\nwait = true\npoll_rpm = 100000\npoll_interval = 0.05\n"
        'timeout = 60\ndownload = "videos"\noutput = "tonight.csv"\n'
    )
    result = setup.invoke("run", setup.manifest, env={"OPENAI_BASE_URL": mock_api.base_url})
    assert result.exit_code == 0, result.output
    videos = sorted(p.name for p in (setup.project / "videos").iterdir())
    assert videos == ["a.mp4", "a.webp"]  # with its thumbnail, by default
    ledger = read_ledger(setup.project / "tonight.csv")
    assert ledger["a"]["status"] == "downloaded"


def test_a_flag_wins_over_the_files(setup: Setup, mock_api: RunningMock) -> None:
    setup.user_file("concurrency = 0\n")  # out of range, but never used: the flag wins
    setup.project_file("rpm = 0.0001\n")  # one create every 10 minutes, were it used
    result = setup.invoke(
        "run",
        setup.manifest,
        "--concurrency",
        "2",
        "--rpm",
        "100000",
        env={"OPENAI_BASE_URL": mock_api.base_url},
    )
    assert result.exit_code == 0, result.output
    assert mock_api.state.jobs_created == 1


def test_config_shows_each_setting_and_where_it_came_from(setup: Setup) -> None:
    user = setup.user_file('profile = "relay"\nconcurrency = 8\n')
    project = setup.project_file("rpm = 30\n")
    setup.write_manifest("base_url: https://relay.example.com/v1")
    result = setup.invoke(
        "config", setup.manifest, env={"BATCHGEN_ALLOWED_BASE_URLS": "https://relay.example.com"}
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["profile"] == ["relay", str(user)]
    assert rows["concurrency"] == ["8", str(user)]
    assert rows["rpm"] == ["30", str(project)]
    assert rows["base_url"] == ["https://relay.example.com/v1", "night.yaml's", "base_url:"]
    assert rows["poll_rpm"] == ["600.0", "default"]
    assert rows["output"] == [str(setup.project / "night.results.csv"), "default"]


def test_config_shows_a_refused_address_as_refused(setup: Setup) -> None:
    setup.project_file('base_url = "https://stranger.example.com/v1"\n')
    result = setup.invoke("config", setup.manifest)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("base_url"))
    assert "(refused)" in line and "sends the API key to https://stranger.example.com" in line
