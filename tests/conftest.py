"""Shared fixtures: the simulated API on loopback, the real CLI, and real files in tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from batchgen.cli import cli
from batchgen.mock.server import MockConfig, MockThread, RunningMock

API_KEY = "sk-test-RECOGNISABLE-0123456789abcdef"


@dataclass
class Invocation:
    """What one run of the real CLI printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


Invoke = Callable[..., Invocation]


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


def make_image(path: Path, size: tuple[int, int] = (720, 1280), fmt: str = "PNG") -> Path:
    """A real image file of ``size`` pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 120, 40)).save(path, fmt)
    return path


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    """A CSV as Excel writes it (CRLF, BOM by default)."""
    import csv

    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture(autouse=True)
def _no_ambient_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a real key or address from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("OPENAI_"):
            monkeypatch.delenv(name)
