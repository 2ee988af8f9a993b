"""``--notify URL``: a JSON summary POSTed to a webhook when run or report ends, received
by a real HTTP server on 127.0.0.1; a webhook that fails never changes the outcome."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from batchgen.mock import MockConfig, RunningMock
from batchgen.profile_files import load_profile
from tests.helpers import API_KEY, FAST, AppThread, Invocation, Invoke, write, write_csv

TOKEN = "T0SECRET/B0SECRET/xoxTOKEN123"  # what a Slack webhook's path carries


@dataclass
class Webhook:
    """A chat's incoming webhook: records every POST, answers with ``statuses`` in turn
    (the last one after that)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status, text="ok" if status == 200 else "no")


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hooks/{tail:.*}", hook.handle)
    with AppThread(app) as server:
        hook.url = f"{server.base_url}/hooks/{TOKEN}"
        yield hook


def night(tmp_path: Path) -> Path:
    """Two rows: one the provider takes, one it refuses (15 s on the official API)."""
    rows = [["id", "prompt", "seconds"], ["a", "a calm sea", "4"], ["b", "too long", "15"]]
    return write_csv(tmp_path / "night.csv", rows)


def run_night(
    invoke: Invoke, tmp_path: Path, url: str, notify: str, *extra: str | Path
) -> Invocation:
    return invoke(
        "run",
        night(tmp_path),
        "--base-url",
        url,
        "--profile",
        "relay",  # validates 15 s; the official API behind it refuses them
        *FAST,
        "--no-progress",
        "--log-file",
        tmp_path / "night.log",
        "--notify",
        notify,
        *extra,
    )


@pytest.fixture
def official(start_mock: Any) -> RunningMock:
    mock: RunningMock = start_mock(MockConfig(profile=load_profile("openai")))
    return mock


def everything_written(tmp_path: Path, *outputs: str) -> str:
    files = [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()]
    return "\n".join([*outputs, *files])


def test_run_posts_counts_cost_exit_code_and_the_rows_needing_attention(
    tmp_path: Path, invoke: Invoke, official: RunningMock, webhook: Webhook
) -> None:
    summary = tmp_path / "night.json"
    result = run_night(invoke, tmp_path, official.base_url, webhook.url, "--summary-json", summary)
    assert result.exit_code == 1, result.output  # row b needs attention
    [body] = webhook.received
    assert body["command"] == "run" and body["exit_code"] == 1
    assert body["results"] == str(tmp_path / "night.results.csv")
    assert body["rows"] == {"queued": 1, "rejected": 1}
    assert body["duration_seconds"] >= 0 and "estimated_cost_usd" in body
    [row] = body["attention"]
    assert row["row"] == 3 and row["id"] == "b" and row["status"] == "rejected"
    assert "Invalid value: '15'" in row["reason"]
    assert row["command"] == f"batchgen run {tmp_path / 'night.csv'} --retry-rejected"
    # the text a person reads in the channel
    text = body["text"]
    assert text.startswith("batchgen run night.csv: done, some rows need attention (exit 1)")
    assert "queued 1, rejected 1" in text and "needs attention: 1 rows" in text
    assert "• row 3 (b) rejected: " in text and "--retry-rejected" in text
    # structured like --summary-json
    written = json.loads(summary.read_text(encoding="utf-8"))
    assert written["attention"] == body["attention"]
    # the key is in nothing sent or written; the webhook's token is in no output or file
    assert API_KEY not in json.dumps(body)
    seen = everything_written(tmp_path, result.stdout, result.stderr)
    assert API_KEY not in seen and "SECRET" not in seen and "xoxTOKEN" not in seen
    host = webhook.url.split("/hooks/")[0]
    assert f"notified {host}/… (HTTP 200)" in (tmp_path / "night.log").read_text("utf-8")


def test_a_webhook_failing_once_is_retried_and_delivered(
    tmp_path: Path, invoke: Invoke, official: RunningMock, webhook: Webhook
) -> None:
    webhook.statuses = [500, 200]
    result = run_night(invoke, tmp_path, official.base_url, webhook.url)
    assert result.exit_code == 1
    assert len(webhook.received) == 2 and webhook.received[0] == webhook.received[1]
    assert "retrying" in result.stderr and "notified" in result.stderr


def test_a_webhook_that_always_fails_changes_nothing_and_is_bounded(
    tmp_path: Path, invoke: Invoke, official: RunningMock, webhook: Webhook
) -> None:
    webhook.statuses = [500]
    started = time.monotonic()
    result = run_night(invoke, tmp_path, official.base_url, webhook.url)
    assert time.monotonic() - started < 30
    assert result.exit_code == 1  # the run's own outcome
    assert len(webhook.received) == 3  # a few tries, then it gives up
    log = (tmp_path / "night.log").read_text(encoding="utf-8")
    assert "not delivered: HTTP 500" in log and "SECRET" not in log + result.output


def test_a_webhook_nobody_listens_on_changes_nothing(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rows = write_csv(tmp_path / "ok.csv", [["id", "prompt"], ["a", "a calm sea"]])
    started = time.monotonic()
    result = invoke(
        "run", rows, "--base-url", mock_api.base_url, *FAST, "--notify",
        f"http://127.0.0.1:{port}/hooks/{TOKEN}",
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.exit_code == 0, result.output
    assert f"notification to http://127.0.0.1:{port}/… not delivered" in result.stderr
    assert "SECRET" not in result.output


def test_report_posts_where_every_row_stands_and_the_files_it_wrote(
    tmp_path: Path, invoke: Invoke, official: RunningMock, webhook: Webhook
) -> None:
    invoke("run", night(tmp_path), "--base-url", official.base_url, "--profile", "relay", *FAST)
    html = tmp_path / "report.html"
    results = tmp_path / "night.results.csv"
    result = invoke("report", results, "--html", html, "--notify", webhook.url)
    assert result.exit_code == 0, result.output
    [body] = webhook.received
    assert body["command"] == "report" and body["reports"] == [str(html)]
    assert body["rows"] == {"queued": 1, "rejected": 1} and body["attention_total"] == 1
    assert body["attention"][0]["id"] == "b"
    assert body["text"].startswith("batchgen report night.results.csv: 2 rows")
    assert "SECRET" not in result.output


def test_the_config_files_notify_url_is_used_and_shown_only_by_its_host(
    tmp_path: Path, invoke: Invoke, official: RunningMock, webhook: Webhook
) -> None:
    config = tmp_path / "xdg"
    (config / "batchgen").mkdir(parents=True)
    write(config / "batchgen" / "config.toml", f'notify_url = "{webhook.url}"\n')
    env = {"XDG_CONFIG_HOME": str(config)}
    path = night(tmp_path)
    result = invoke("run", path, "--base-url", official.base_url, "--profile", "relay", env=env)
    assert result.exit_code == 1 and len(webhook.received) == 1
    shown = invoke("config", path, env=env)
    host = webhook.url.split("/hooks/")[0]
    assert f"{host}/…" in shown.stdout and "SECRET" not in shown.output


def test_a_bad_notify_address_is_refused_before_anything_is_sent(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    rows = write_csv(tmp_path / "ok.csv", [["id", "prompt"], ["a", "a calm sea"]])
    result = invoke("run", rows, "--base-url", mock_api.base_url, "--notify", "ftp://h/SECRET")
    assert result.exit_code == 2
    assert "ftp://h/… is not an http(s):// webhook address" in result.stderr
    assert "SECRET" not in result.output and mock_api.state.create_requests == 0


def test_a_bad_address_in_a_project_file_is_refused_naming_file_and_key(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    rows = write_csv(tmp_path / "ok.csv", [["id", "prompt"], ["a", "a calm sea"]])
    config = write(tmp_path / "batchgen.toml", 'notify_url = "ftp://h/SECRET"\n')
    result = invoke("run", rows, "--base-url", mock_api.base_url)
    assert result.exit_code == 2
    assert f"{config}: notify_url: ftp://h/… is not an http(s):// webhook" in result.stderr
    assert "SECRET" not in result.output and mock_api.state.create_requests == 0


def test_notify_is_an_output_option_of_run_and_report(invoke: Invoke) -> None:
    for command in ("run", "report"):
        shown = invoke(command, "--help").stdout
        output = shown[shown.index("Output:") :]
        assert "--notify URL" in output.split("\n\n")[0], command


def test_a_run_refused_before_sending_still_says_so(
    tmp_path: Path, invoke: Invoke, webhook: Webhook
) -> None:
    bad = write_csv(tmp_path / "bad.csv", [["id", "prompt"], ["a", ""]])
    result = invoke("run", bad, "--mock", "--notify", webhook.url)
    assert result.exit_code == 2
    [body] = webhook.received
    assert body["exit_code"] == 2 and body["command"] == "run"
    assert body["text"].startswith("batchgen run failed (exit 2): ")
    assert "bad.csv:2: prompt" in body["text"]
