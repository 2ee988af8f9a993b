"""Shared fixtures: the simulated API on loopback, the real CLI, and real files in tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchgen.cli import cli
from batchgen.mock import MockConfig, MockThread, RunningMock
from tests.helpers import API_KEY, Invocation, Invoke


@pytest.fixture
def invoke() -> Invoke:
    """Run the ``batchgen`` CLI in-process with a clean, explicit environment."""

    def run(*args: str | Path, env: dict[str, str] | None = None) -> Invocation:
        base = {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": ""}
        runner = CliRunner(env={**base, **(env or {})})
        result: Result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        return Invocation(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def start_mock() -> Iterator[Callable[..., RunningMock]]:
    """Start simulated APIs on 127.0.0.1 (stopped after the test)."""
    started: list[MockThread] = []

    def start(config: MockConfig | None = None) -> RunningMock:
        thread = MockThread(config or MockConfig())
        started.append(thread)
        return thread.__enter__()

    yield start
    for thread in started:
        thread.__exit__(None, None, None)


@pytest.fixture
def mock_api(start_mock: Callable[..., RunningMock]) -> RunningMock:
    """A well-behaved simulated API with the official profile."""
    return start_mock()


@pytest.fixture(autouse=True)
def _no_ambient_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never inherit a real key, address, allow-list or config file from the
    developer's shell or home folder."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "BATCHGEN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("no-user-config")))
