"""A download cut mid-stream resumes with a Range request instead of starting over.

Every test runs the real CLI (in-process, or as a subprocess that is killed) against the
simulated API on 127.0.0.1, which honours ``Range: bytes=N-`` as real servers and CDNs do
(or ignores it, when told) and counts the video bytes it sends. The downloaded files are
compared with what the mock serves whole.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.mock.media import CHUNK_BYTES
from batchgen.profile_files import load_profile
from tests.helpers import API_KEY, FAST, FOLLOW, Invoke, run_command, wait_for, write_csv

StartMock = Callable[..., RunningMock]
#: Eight of the mock's chunks: a body cut halfway on every try still ends within four tries.
VIDEO_BYTES = 8 * CHUNK_BYTES
CUT_EVERY_TRY = Faults(cut_stream=1.0, endpoints=frozenset({"content", "cdn"}))
FOLLOWING = ("--poll-rpm", "100000", "--poll-interval", "0.05", "--timeout", "60")


def manifest(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "m.csv", [["id", "prompt"], ["a", "a calm sea"]])


def run_download(invoke: Invoke, tmp_path: Path, mock: RunningMock, *extra: str) -> Path:
    """``batchgen run --wait --download`` of the one-row manifest; returns the video's path."""
    videos = tmp_path / "videos"
    command = ("run", manifest(tmp_path), "--base-url", mock.base_url, *FAST, *FOLLOW)
    result = invoke(*command, "--download", videos, "--no-thumbnails", *extra)
    assert result.exit_code == 0, result.output
    assert read_ledger(tmp_path / "m.results.csv")["a"]["status"] == "downloaded"
    assert [p.name for p in videos.iterdir()] == ["a.mp4"]  # no .part left beside it
    return videos / "a.mp4"


def download(invoke: Invoke, tmp_path: Path, mock: RunningMock) -> Path:
    """``batchgen download`` of the results file an earlier run left; the video's path."""
    videos, results = tmp_path / "videos", tmp_path / "m.results.csv"
    follow = ("--base-url", mock.base_url, *FOLLOWING, "--no-thumbnails")
    result = invoke("download", results, "--to", videos, *follow)
    assert result.exit_code == 0, result.output
    assert read_ledger(results)["a"]["status"] == "downloaded"
    assert [p.name for p in videos.iterdir()] == ["a.mp4"]
    return videos / "a.mp4"


def job_id(tmp_path: Path) -> str:
    return read_ledger(tmp_path / "m.results.csv")["a"]["job_id"]


def served_whole(mock: RunningMock, job: str, link: str = "") -> bytes:
    """The video as the mock serves it to a plain GET without Range: ``link`` (a CDN's,
    no key), else the job's /content with the key."""
    url = link or f"{mock.base_url}/videos/{quote(job, safe=':')}/content"
    headers = {} if link else {"Authorization": f"Bearer {API_KEY}"}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        body: bytes = r.read()
    return body


def test_a_video_cut_on_every_try_resumes_to_the_whole_file_sending_each_byte_about_once(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(video_bytes=VIDEO_BYTES, faults=CUT_EVERY_TRY))
    video = run_download(invoke, tmp_path, mock, "--max-attempts", "6")
    job = job_id(tmp_path)
    assert mock.state.requests_by_endpoint["content"] >= 3  # cut, resumed, cut again, …
    sent = mock.state.video_bytes_sent[job]
    # Starting over would never have finished (each try is cut halfway); resuming sends
    # each byte about once (a byte lost with the cut connection is sent again).
    assert VIDEO_BYTES <= sent < 1.5 * VIDEO_BYTES
    mock.config.faults = Faults()
    assert video.read_bytes() == served_whole(mock, job)


def test_a_part_left_by_a_killed_run_is_resumed_by_the_next_download(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    size = 16 * CHUNK_BYTES
    mock = start_mock(MockConfig(video_bytes=size, chunk_delay=0.1))  # ~1.6 s to stream
    videos = tmp_path / "videos"
    part = videos / "a.mp4.part"
    follow = ("--wait", "--download", str(videos), *FOLLOWING, "--no-thumbnails")
    command = run_command(manifest(tmp_path), mock.base_url, *follow)
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    with (
        (tmp_path / "stderr.log").open("wb") as log,
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log) as process,
    ):
        try:
            wait_for(lambda: part.is_file() and part.stat().st_size >= 2 * CHUNK_BYTES)
        finally:
            process.kill()  # a crash mid-download: SIGKILL, nothing cleaned up
            process.wait(timeout=30)
    assert not (videos / "a.mp4").exists()  # never a cut video under its final name
    kept = part.stat().st_size
    assert 0 < kept < size
    mock.config.chunk_delay = 0.0
    before = mock.state.video_bytes_sent[job_id(tmp_path)]
    video = download(invoke, tmp_path, mock)
    resumed = mock.state.video_bytes_sent[job_id(tmp_path)] - before
    # Only the rest was sent (give or take a chunk the dead run's stream was still writing).
    assert size - kept <= resumed <= size - kept + CHUNK_BYTES < size
    assert video.read_bytes() == served_whole(mock, job_id(tmp_path))


def test_a_server_that_ignores_range_still_gives_a_whole_correct_file(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock
) -> None:
    mock = start_mock(MockConfig(video_bytes=VIDEO_BYTES, ranges=False))
    command = ("run", manifest(tmp_path), "--base-url", mock.base_url, *FAST, *FOLLOW)
    assert invoke(*command).exit_code == 0  # followed to completed, nothing downloaded
    job = job_id(tmp_path)
    whole = served_whole(mock, job)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4.part").write_bytes(whole[: VIDEO_BYTES // 2])  # a cut try's leftover
    # the server counts a chunk once it is written, which may be after urllib has it all
    wait_for(lambda: mock.state.video_bytes_sent[job] == VIDEO_BYTES)
    before = mock.state.video_bytes_sent[job]
    video = download(invoke, tmp_path, mock)
    assert mock.state.video_bytes_sent[job] - before == VIDEO_BYTES  # a 200: all of it
    assert video.read_bytes() == whole  # started over, not appended to the half


@pytest.mark.parametrize("extra", [0, 1000], ids=["part-already-whole", "part-too-long"])
def test_a_part_the_server_cannot_continue_is_fetched_again_from_the_start(
    tmp_path: Path, invoke: Invoke, start_mock: StartMock, extra: int
) -> None:
    mock = start_mock(MockConfig(video_bytes=VIDEO_BYTES))
    command = ("run", manifest(tmp_path), "--base-url", mock.base_url, *FAST, *FOLLOW)
    assert invoke(*command).exit_code == 0
    job = job_id(tmp_path)
    whole = served_whole(mock, job)
    videos = tmp_path / "videos"
    videos.mkdir()
    # A crash just before the rename, or a stale part longer than the video: 416.
    (videos / "a.mp4.part").write_bytes(whole + b"\0" * extra)
    before = mock.state.requests_by_endpoint["content"]
    video = download(invoke, tmp_path, mock)
    assert mock.state.requests_by_endpoint["content"] - before == 2  # 416, then from byte 0
    assert video.read_bytes() == whole


def test_a_cdn_link_resumes_too(tmp_path: Path, invoke: Invoke, start_mock: StartMock) -> None:
    timing = {"job_duration": 0.0, "refresh_seconds": 0.0}
    config = MockConfig.for_profile(
        load_profile("sora-app"), video_bytes=VIDEO_BYTES, faults=CUT_EVERY_TRY, **timing
    )
    mock = start_mock(config)
    video = run_download(invoke, tmp_path, mock, "--profile", "sora-app", "--max-attempts", "6")
    state = read_ledger(tmp_path / "m.results.csv")["a"]
    assert mock.cdn_url is not None and state["video_url"].startswith(mock.cdn_url)
    assert mock.state.requests_by_endpoint["cdn"] >= 3
    assert VIDEO_BYTES <= mock.state.video_bytes_sent[state["job_id"]] < 1.5 * VIDEO_BYTES
    assert set(mock.state.cdn_auth_headers) == {None}  # the resumed tries got no key either
    mock.config.faults = Faults()
    assert video.read_bytes() == served_whole(mock, state["job_id"], link=state["video_url"])
