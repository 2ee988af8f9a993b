"""The nightly job end to end through the real CLI: run --wait --download, poll, download,
report --html — against the simulated API on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from batchgen.ledger import Record, read_ledger
from batchgen.mock import MockConfig, RunningMock
from tests.helpers import Invoke, make_image, write_csv

StartMock = Callable[..., RunningMock]
FOLLOW = ("--poll-rpm", "100000", "--poll-interval", "0.05", "--backoff", "0.01")
FAST = ("--rpm", "100000", *FOLLOW)


def nightly(tmp_path: Path) -> Path:
    make_image(tmp_path / "ref.png")
    rows = [
        ["id", "prompt", "image", "campaign"],
        ["cat", "A calico cat playing a piano", "", "autumn"],
        ["fuji", "Mount Fuji at dawn", "ref.png", "autumn"],
        ["bad", "A banned subject [fail]", "", "autumn"],
    ]
    return write_csv(tmp_path / "night.csv", rows)


def ledger(tmp_path: Path) -> dict[str, Record]:
    return read_ledger(tmp_path / "night.results.csv")


def test_run_wait_download_then_report_ends_in_videos_and_a_page_matching_the_ledger(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    videos = tmp_path / "videos"
    result = invoke(
        "run",
        nightly(tmp_path),
        "--base-url",
        mock_api.base_url,
        *FAST,
        "--wait",
        "--download",
        videos,
        "--variant",
        "thumbnail",
    )
    assert result.exit_code == 1, result.output  # the moderated row needs attention
    states = ledger(tmp_path)
    assert {k: s["status"] for k, s in states.items()} == {
        "cat": "downloaded",
        "fuji": "downloaded",
        "bad": "failed",
    }
    assert states["bad"]["error_code"] == "moderation_blocked"
    for key in ("cat", "fuji"):
        video = Path(states[key]["file"])
        assert video.name == f"{key}.mp4" and video.read_bytes()[4:8] == b"ftyp"
        assert video.stat().st_size == int(states[key]["file_bytes"])
        assert Path(states[key]["thumbnail"]).exists()
    assert not list(videos.glob("*.part"))

    page = tmp_path / "report.html"
    report = invoke("report", tmp_path / "night.results.csv", "--html", page)
    assert report.exit_code == 0
    html = page.read_text(encoding="utf-8")
    cards = re.findall(r'<article class="card" data-status="([a-z_]+)"', html)
    assert sorted(cards) == ["downloaded", "downloaded", "failed"]
    assert "moderation_blocked" in html
    assert 'href="videos/cat.mp4"' in html


def test_poll_records_a_job_the_provider_lost(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(job_duration=3600))
    path = nightly(tmp_path)
    invoke("run", path, "--base-url", mock.base_url, *FAST)
    mock.state.delete(ledger(tmp_path)["cat"]["job_id"])
    result = invoke("poll", tmp_path / "night.results.csv", "--base-url", mock.base_url, *FOLLOW)
    assert result.exit_code == 1
    states = ledger(tmp_path)
    assert states["cat"]["status"] == "lost"
    assert states["fuji"]["status"] in ("queued", "in_progress")


def test_wait_that_times_out_exits_4_and_a_later_run_finishes(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(job_duration=3600))
    rows = [["id", "prompt"], ["slow", "A very slow render"]]
    path = write_csv(tmp_path / "night.csv", rows)
    result = invoke("run", path, "--base-url", mock.base_url, *FAST, "--wait", "--timeout", "0.3")
    assert result.exit_code == 4, result.output
    assert "still running 1" in result.stdout
    mock.config.job_duration = 0.0
    again = invoke(
        "poll",
        tmp_path / "night.results.csv",
        "--base-url",
        mock.base_url,
        *FOLLOW,
        "--wait",
        "--timeout",
        "30",
    )
    assert again.exit_code == 0, again.output
    assert ledger(tmp_path)["slow"]["status"] == "completed"


def test_download_after_the_links_expired_records_expired(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(expires_after=0.0))
    path = nightly(tmp_path)
    invoke("run", path, "--base-url", mock.base_url, *FAST)
    result = invoke(
        "download",
        tmp_path / "night.results.csv",
        "--to",
        tmp_path / "v",
        "--base-url",
        mock.base_url,
        *FOLLOW,
        "--wait",
        "--timeout",
        "30",
    )
    assert result.exit_code == 1
    assert ledger(tmp_path)["cat"]["status"] == "expired"
    assert not (tmp_path / "v" / "cat.mp4").exists()


def test_download_is_skipped_on_rerun_and_a_missing_file_is_fetched_again(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    path = nightly(tmp_path)
    args = ("--base-url", mock_api.base_url, *FAST, "--wait", "--download", tmp_path / "v")
    invoke("run", path, *args)
    fetched = mock_api.state.requests_by_endpoint["content"]
    invoke("run", path, *args)
    assert mock_api.state.requests_by_endpoint["content"] == fetched
    (tmp_path / "v" / "cat.mp4").unlink()
    invoke("run", path, *args)
    assert mock_api.state.requests_by_endpoint["content"] == fetched + 1
    assert (tmp_path / "v" / "cat.mp4").exists()


def test_a_bad_name_template_is_refused_before_anything_is_sent(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    result = invoke(
        "run",
        nightly(tmp_path),
        "--base-url",
        mock_api.base_url,
        "--download",
        tmp_path / "v",
        "--name",
        "{nonexistent}",
    )
    assert result.exit_code == 2
    assert "nonexistent" in result.stderr
    assert mock_api.state.create_requests == 0


def test_download_alone_follows_every_job_to_its_video(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(job_duration=0.3))  # not done at the first look
    rows = [["id", "prompt"], ["cat", "A cat"]]
    path = write_csv(tmp_path / "night.csv", rows)
    result = invoke("run", path, "--base-url", mock.base_url, *FAST, "--download", tmp_path / "v")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v" / "cat.mp4").exists()


def test_poll_goes_where_the_run_sent_the_jobs_with_its_profile(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    from batchgen.profile_files import load_profile

    words = {"queued": "pending", "in_progress": "processing", "completed": "succeeded"}
    relay = start_mock(
        MockConfig(
            profile=load_profile("relay"), status_words=words, listing=False, id_prefix="task_"
        )
    )
    path = write_csv(tmp_path / "night.csv", [["id", "prompt", "style"], ["cat", "A cat", "anime"]])
    invoke("run", path, "--profile", "relay", "--base-url", relay.base_url, *FAST)
    # no --profile, no --base-url: a relay's key must not go to OpenAI's default address;
    # the record beside the results is a file like any other, so its address needs allowing
    allow = ("--allow-base-url", relay.base_url.removesuffix("/v1"))
    result = invoke("poll", tmp_path / "night.results.csv", *FOLLOW, *allow)
    assert result.exit_code == 0, result.output
    state = ledger(tmp_path)["cat"]
    assert state["job_id"].startswith("task_") and state["status"] == "completed"


def test_poll_after_a_mock_run_says_why_it_cannot(tmp_path: Path, invoke: Invoke) -> None:
    path = write_csv(tmp_path / "night.csv", [["id", "prompt"], ["cat", "A cat"]])
    invoke("run", path, "--mock", *FAST)
    result = invoke("poll", tmp_path / "night.results.csv")
    assert result.exit_code == 2
    assert "simulated API" in result.stderr
