"""Downloading completed jobs into real files, against the simulated API on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from batchgen.errors import UsageError
from batchgen.follow.download import Downloader, FetchResult, check_variants, with_thumbnail
from batchgen.follow.naming import FileNamer
from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig, RunningMock
from batchgen.profile_files import load_profile
from batchgen.provider.retry import RetrySettings
from tests.helpers import (
    FAST,
    FAST_RETRY,
    FOLLOW,
    LOG,
    Harness,
    Invoke,
    bounded,
    harness,
    lines_for,
    poller,
    write_csv,
)

VIDEO_BYTES = 300_000


def downloader(
    h: Harness,
    *,
    variants: tuple[str, ...] = ("video",),
    thumbnails: bool = False,
    template: str | None = None,
    retry: RetrySettings = FAST_RETRY,
    wall: float | None = None,
) -> Downloader:
    """A downloader into ``h.folder``; ``wall`` is "now" for expiry (default: the mock's)."""
    namer = FileNamer(h.folder, template, h.ledger.states, h.ledger.header)
    return Downloader(
        h.client,
        h.ledger,
        h.throttle(),
        retry,
        namer,
        variants=variants,
        thumbnails=thumbnails,
        wall=(lambda: wall) if wall is not None else h.clock,
        logger=LOG,
    )


async def completed(h: Harness, key: str, prompt: str = "a calm sea", **extra: str) -> None:
    """Submit ``key`` and poll it to ``completed`` (the mock's jobs take no time)."""
    await h.submit(key, prompt, **extra)
    assert (await bounded(poller(h).poll(key))).status == "completed"


async def test_a_completed_video_is_streamed_to_its_file_and_recorded(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(video_bytes=VIDEO_BYTES)) as h:
        await completed(h, "c-01")
        result = await bounded(downloader(h).fetch("c-01"))
        assert result == FetchResult("downloaded", files=1, bytes=VIDEO_BYTES)
        state = h.ledger.states["c-01"]
        path = h.folder / "c-01.mp4"
        data = path.read_bytes()
        assert state["file"] == str(path) and state["file_bytes"] == str(VIDEO_BYTES)
        assert state["sha256"] == hashlib.sha256(data).hexdigest()
        assert data[4:8] == b"ftyp"
        assert list(h.folder.iterdir()) == [path]  # no .part left behind


async def test_previews_are_fetched_as_webp_and_jpeg(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "c-01")
        variants = ("video", "thumbnail", "spritesheet")
        result = await bounded(downloader(h, variants=variants).fetch("c-01"))
        assert result.files == 3 and result.status == "downloaded"
        state = h.ledger.states["c-01"]
        for column, fmt in (("thumbnail", "WEBP"), ("spritesheet", "JPEG")):
            with Image.open(state[column]) as image:
                assert image.format == fmt
        assert sorted(p.name for p in h.folder.iterdir()) == ["c-01.jpg", "c-01.mp4", "c-01.webp"]
        # one line once the video is whole, one when the previews were added
        assert [r["status"] for r in lines_for(h.results, "c-01")][-2:] == ["downloaded"] * 2


async def test_names_follow_the_template_and_stay_unique(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "a", campaign="autumn/launch")
        await completed(h, "b", campaign="Autumn/Launch")
        d = downloader(h, template="{campaign}")
        for key in ("a", "b"):
            await bounded(d.fetch(key))
        names = sorted(p.name for p in h.folder.iterdir())
        assert names == ["Autumn-Launch-2.mp4", "autumn-launch.mp4"]


async def test_a_rerun_skips_what_is_on_disk_and_asks_for_no_content(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "c-01")
        await bounded(downloader(h, variants=("video", "thumbnail")).fetch("c-01"))
        before = h.requests("content")
        again = downloader(h, variants=("video", "thumbnail"))  # as a new run builds it
        assert not again.wants("c-01")
        assert h.requests("content") == before == 2


async def test_a_connection_cut_mid_stream_leaves_no_file_and_a_rerun_completes_it(
    tmp_path: Path,
) -> None:
    faults = Faults(cut_stream=1.0, endpoints=frozenset({"content"}))
    config = MockConfig(faults=faults, video_bytes=VIDEO_BYTES)
    async with harness(tmp_path, config) as h:
        await completed(h, "c-01")
        result = await bounded(downloader(h).fetch("c-01"))
        assert result.status == "completed" and result.again and result.error is not None
        assert h.requests("content") == FAST_RETRY.max_attempts
        # no file under its final name; the cut part stays, for the next try to resume
        assert [p.name for p in h.folder.iterdir()] == ["c-01.mp4.part"]
        faults.cut_stream = 0.0  # the network is back; the next run:
        result = await bounded(downloader(h).fetch("c-01"))
        assert result.status == "downloaded"
        assert (h.folder / "c-01.mp4").stat().st_size == VIDEO_BYTES


async def test_a_cut_stream_is_retried_within_the_run(tmp_path: Path) -> None:
    faults = Faults(seed=7, cut_stream=0.6, endpoints=frozenset({"content"}))
    async with harness(tmp_path, MockConfig(faults=faults, video_bytes=VIDEO_BYTES)) as h:
        await completed(h, "c-01")
        retry = RetrySettings(max_attempts=20, backoff_base=0.001, backoff_max=0.01)
        result = await bounded(downloader(h, retry=retry).fetch("c-01"))
        assert result.status == "downloaded" and h.requests("content") > 1


@pytest.mark.parametrize("damage", ["missing", "wrong size", "partial leftover"])
async def test_files_damaged_since_the_last_run_are_fetched_again(
    tmp_path: Path, damage: str
) -> None:
    async with harness(tmp_path, MockConfig(video_bytes=VIDEO_BYTES)) as h:
        await completed(h, "c-01")
        await bounded(downloader(h).fetch("c-01"))
        path = h.folder / "c-01.mp4"
        good = path.read_bytes()
        if damage == "missing":
            path.unlink()
        elif damage == "wrong size":
            path.write_bytes(good[:1000])
        else:  # a crash mid-download: the final name was never written, a .part was
            path.unlink()
            path.with_name("c-01.mp4.part").write_bytes(good[:5000])
        d = downloader(h)
        assert d.wants("c-01")
        assert (await bounded(d.fetch("c-01"))).status == "downloaded"
        assert path.read_bytes() == good
        assert sorted(p.name for p in h.folder.iterdir()) == ["c-01.mp4"]
        assert h.requests("content") == 2


async def test_a_deleted_file_is_not_wanted_once_its_link_expired(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "c-01")
        await bounded(downloader(h).fetch("c-01"))
        (h.folder / "c-01.mp4").unlink()
        expires_at = int(h.ledger.states["c-01"]["expires_at"])
        assert downloader(h, wall=expires_at - 1).wants("c-01")
        assert not downloader(h, wall=expires_at).wants("c-01")
        assert h.ledger.states["c-01"]["status"] == "downloaded"  # history stays


async def test_a_link_past_its_expiry_is_expired_without_asking(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(expires_after=3600)) as h:
        await completed(h, "late")
        expires_at = int(h.ledger.states["late"]["expires_at"])
        result = await bounded(downloader(h, wall=expires_at + 1).fetch("late"))
        state = h.ledger.states["late"]
        assert result.status == state["status"] == "expired"
        assert "expired at" in state["error_message"]
        assert h.requests("content") == 0


@pytest.mark.parametrize("answer", [410, 404])
async def test_content_gone_at_the_provider_is_expired(tmp_path: Path, answer: int) -> None:
    async with harness(tmp_path, MockConfig(expires_after=60, expired_status=answer)) as h:
        await completed(h, "late")
        h.clock.advance(61)  # the provider's clock says expired; ours (skewed) does not
        result = await bounded(downloader(h, wall=0).fetch("late"))
        state = h.ledger.states["late"]
        assert result.status == state["status"] == "expired"
        assert state["error_code"] == "video_expired"


async def test_content_of_a_job_the_provider_forgot_is_lost(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "gone")
        h.mock.state.delete(h.ledger.states["gone"]["job_id"])
        assert (await bounded(downloader(h).fetch("gone"))).status == "lost"


@pytest.mark.parametrize("not_ready", [409, 400])
async def test_a_relays_not_ready_answer_is_not_final(tmp_path: Path, not_ready: int) -> None:
    config = MockConfig(content_delay=30.0, not_ready_status=not_ready)
    async with harness(tmp_path, config) as h:
        await completed(h, "c-01")
        result = await bounded(downloader(h).fetch("c-01"))
        assert result == FetchResult("completed", again=True)
        assert h.ledger.states["c-01"]["status"] == "completed"
        h.clock.advance(30)
        assert (await bounded(downloader(h).fetch("c-01"))).status == "downloaded"


async def test_a_failed_preview_keeps_the_video_and_is_fetched_next_run(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "c-01")
        await bounded(downloader(h).fetch("c-01"))
        h.mock.config.faults = Faults(error_500=1.0, endpoints=frozenset({"content"}))
        with_sheet = downloader(h, variants=("video", "spritesheet"))
        result = await bounded(with_sheet.fetch("c-01"))
        assert result.status == "downloaded" and result.files == 0
        assert result.error is not None and result.error.status == 500
        assert not h.ledger.states["c-01"].get("spritesheet")
        h.mock.config.faults = Faults()
        assert with_sheet.wants("c-01")  # the video is there; the sheet is not
        result = await bounded(with_sheet.fetch("c-01"))
        assert result.files == 1 and h.ledger.states["c-01"]["spritesheet"].endswith(".jpg")


def test_variants_are_checked_and_video_comes_first() -> None:
    assert check_variants(("thumbnail",)) == ("video", "thumbnail")
    assert check_variants(("spritesheet", "video", "spritesheet")) == ("video", "spritesheet")
    with pytest.raises(UsageError, match="gif"):
        check_variants(("video", "gif"))


# --- the thumbnail by default, where the provider makes one ---


async def test_the_thumbnail_comes_with_the_video_by_default(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "c-01")
        d = downloader(h, thumbnails=True)
        assert d.variants == ("video", "thumbnail")
        result = await bounded(d.fetch("c-01"))
        assert result.files == 2 and result.status == "downloaded"
        assert sorted(p.name for p in h.folder.iterdir()) == ["c-01.mp4", "c-01.webp"]
        with Image.open(h.ledger.states["c-01"]["thumbnail"]) as image:
            assert image.format == "WEBP"


async def test_a_provider_without_previews_downloads_only_the_video(tmp_path: Path) -> None:
    config = MockConfig.for_profile(load_profile("litellm"))
    async with harness(tmp_path, config, profile="litellm") as h:
        await completed(h, "c-01")
        d = downloader(h, thumbnails=True)  # no error: there is simply no thumbnail to get
        assert d.variants == ("video",)
        assert (await bounded(d.fetch("c-01"))).files == 1
        assert [p.name for p in h.folder.iterdir()] == ["c-01.mp4"]
        assert not d.wants("c-01")  # nothing left to fetch: a rerun asks for nothing


def test_asked_previews_stay_and_the_thumbnail_joins_them_once() -> None:
    openai, litellm = load_profile("openai"), load_profile("litellm")
    assert with_thumbnail(("spritesheet",), openai) == ("video", "spritesheet", "thumbnail")
    assert with_thumbnail(("thumbnail",), openai) == ("video", "thumbnail")
    assert with_thumbnail((), litellm) == ("video",)
    with pytest.raises(UsageError, match="no such preview"):  # asked for: still refused
        with_thumbnail(("thumbnail",), litellm)


def cli_batch(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "m.csv", [["id", "prompt"], ["a", "a calm sea"]])


@pytest.mark.parametrize(
    ("flags", "files"),
    [
        ((), ["a.mp4", "a.webp"]),
        (("--no-thumbnails",), ["a.mp4"]),
        (("--no-thumbnails", "--variant", "spritesheet"), ["a.jpg", "a.mp4"]),
        (("--variant", "thumbnail"), ["a.mp4", "a.webp"]),  # as `make demo` asks
    ],
)
def test_run_download_fetches_thumbnails_unless_told_not_to(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, flags: tuple[str, ...], files: list[str]
) -> None:
    videos = tmp_path / "videos"
    command = ("run", cli_batch(tmp_path), "--base-url", mock_api.base_url, *FAST, *FOLLOW)
    result = invoke(*command, "--download", videos, *flags)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in videos.iterdir()) == files


def test_download_fetches_the_thumbnail_of_videos_run_left(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    command = ("run", cli_batch(tmp_path), "--base-url", mock_api.base_url, *FAST, *FOLLOW)
    assert invoke(*command).exit_code == 0  # followed to completed, nothing downloaded
    videos, results_file = tmp_path / "videos", tmp_path / "m.results.csv"
    follow = ("--base-url", mock_api.base_url, *FOLLOW[1:])
    result = invoke("download", results_file, "--to", videos, *follow, "--no-thumbnails")
    assert result.exit_code == 0, result.output
    assert [p.name for p in videos.iterdir()] == ["a.mp4"]
    result = invoke("download", results_file, "--to", videos, *follow)  # the default again
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in videos.iterdir()) == ["a.mp4", "a.webp"]
    assert read_ledger(results_file)["a"]["thumbnail"].endswith("a.webp")


@pytest.mark.parametrize("command", ["run", "download"])
def test_no_thumbnails_is_offered_under_following(invoke: Invoke, command: str) -> None:
    result = invoke(command, "--help")
    following = result.stdout.split("Following:")[1].split("\n\n")[0]
    assert "--thumbnails / --no-thumbnails" in following
    assert "--no-thumbnails" not in invoke("poll", "--help").stdout  # poll downloads nothing


async def test_no_thumbnail_is_asked_for_a_video_whose_link_expired(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await completed(h, "c-01")
        await bounded(downloader(h).fetch("c-01"))  # an older run: the video alone
        expires_at = float(h.ledger.states["c-01"]["expires_at"])
        assert downloader(h, thumbnails=True).wants("c-01")  # the link is still valid
        later = downloader(h, thumbnails=True, wall=expires_at + 1)
        assert not later.wants("c-01")  # the provider would answer 404: not an error
