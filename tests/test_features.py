"""What teams need in week one, through the real CLI against the simulated API: images
that fit, templates, matrices, takes, remixes and a budget in the manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from batchgen.mock import MockConfig, RunningMock
from tests.helpers import FAST, FOLLOW, Invoke, results, write


def photo(path: Path, size: tuple[int, int], orientation: int = 1) -> Path:
    image = Image.new("RGB", size, (30, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", exif=exif.tobytes())
    return path


@pytest.mark.parametrize("fit", ["cover", "contain", "stretch"])
def test_images_of_any_size_and_orientation_are_fitted_and_accepted(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock, fit: str
) -> None:
    sizes = {"wide": (1920, 1080), "small": (320, 240), "tall": (1080, 1920), "exact": (720, 1280)}
    for name, size in sizes.items():
        photo(tmp_path / f"{name}.jpg", size)
    photo(tmp_path / "phone.jpg", (1280, 960), orientation=6)
    originals = {p.name: p.read_bytes() for p in tmp_path.glob("*.jpg")}
    rows = "\n".join(f"  - {{id: {n}, prompt: p {n}, image: {n}.jpg}}" for n in [*sizes, "phone"])
    manifest = write(tmp_path / "m.yaml", f"image_fit: {fit}\nrows:\n{rows}\n")

    checked = invoke("validate", manifest)
    assert checked.exit_code == 0, checked.output
    assert "images to be fitted to the video size: 4" in checked.stdout  # not the exact one
    result = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output  # the provider checks the size exactly
    assert mock_api.state.jobs_created == 5
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.jpg")} == originals


def test_without_image_fit_a_wrong_size_is_an_error_that_names_the_option(
    tmp_path: Path, invoke: Invoke
) -> None:
    photo(tmp_path / "wide.jpg", (1920, 1080))
    manifest = write(tmp_path / "m.yaml", "rows:\n  - {prompt: p, image: wide.jpg}\n")
    result = invoke("validate", manifest)
    assert result.exit_code == 2
    assert "m.yaml:2: image: image is 1920x1080 but size is 720x1280 (image_fit" in result.stderr


def test_the_key_covers_the_fitted_bytes(tmp_path: Path, invoke: Invoke) -> None:
    photo(tmp_path / "wide.jpg", (1920, 1080))
    keys = []
    for fit in ("cover", "contain"):
        manifest = write(
            tmp_path / "m.yaml", f"image_fit: {fit}\nrows:\n  - {{prompt: p, image: wide.jpg}}\n"
        )
        result = invoke("run", manifest, "--dry-run")
        assert result.exit_code == 0
        from batchgen.runner import prepare

        keys.append(prepare(manifest).validation.jobs[0].key)
    assert keys[0] != keys[1]


def test_template_matrix_and_takes_make_distinct_rows_with_their_values(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "prompt_template: '{subject} at {place}'\n"
        "matrix: {seconds: [4, 8], size: [720x1280, 1280x720]}\n"
        "rows:\n"
        "  - {id: a, subject: A fox, place: dawn, owner: mia}\n"
        "  - {id: b, subject: An owl, place: night, takes: 2}\n",
    )
    assert "2 rows, expanded to 12 videos" in invoke("validate", manifest).stdout
    result = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    states = results(manifest)
    assert len(states) == 12 and mock_api.state.jobs_created == 12
    fox = states["a[seconds=8,size=1280x720]"]
    assert (fox["prompt"], fox["seconds"], fox["size"], fox["owner"]) == (
        "A fox at dawn",
        "8",
        "1280x720",
        "mia",
    )
    assert {states[f"b[seconds=4,size=720x1280,take{n}]"]["take"] for n in (1, 2)} == {"1", "2"}
    again = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert again.exit_code == 0 and mock_api.state.jobs_created == 12


def test_a_template_with_a_missing_column_names_it_and_sends_nothing(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "prompt_template: '{subject} in {mood} light'\nrows:\n"
        "  - {subject: A fox, mood: golden}\n  - {subject: An owl}\n",
    )
    result = invoke("run", manifest, "--base-url", mock_api.base_url)
    assert result.exit_code == 2
    assert "m.yaml:4: prompt_template: the template needs column 'mood'" in result.stderr
    assert mock_api.state.create_requests == 0


def test_a_remix_waits_for_its_source_row_and_is_sent_to_the_remix_endpoint(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "rows:\n  - {id: jazz, remix_of: cat, prompt: The cat plays jazz}\n"
        "  - {id: cat, prompt: A cat playing a piano}\n",
    )
    plain = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert plain.exit_code == 0
    assert set(results(manifest)) == {"cat"}  # the remix waits: its source is not complete
    result = invoke("run", manifest, "--base-url", mock_api.base_url, *FAST, *FOLLOW)
    assert result.exit_code == 0, result.output
    states = results(manifest)
    remix = mock_api.state.jobs[states["jazz"]["job_id"]]
    assert remix["remixed_from_video_id"] == states["cat"]["job_id"]
    assert states["jazz"]["remix_of"] == "cat"


def test_a_remix_of_a_provider_job_id(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    first = write(tmp_path / "first.yaml", "rows:\n  - {id: cat, prompt: A cat}\n")
    invoke("run", first, "--base-url", mock_api.base_url, *FAST, *FOLLOW)
    job_id = results(first)["cat"]["job_id"]
    second = write(
        tmp_path / "second.yaml", f"rows:\n  - {{id: jazz, remix_of: {job_id}, prompt: Jazz}}\n"
    )
    result = invoke("run", second, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    remix = mock_api.state.jobs[results(second)["jazz"]["job_id"]]
    assert remix["remixed_from_video_id"] == job_id


def test_remixing_a_row_that_became_several_videos_is_refused(
    tmp_path: Path, invoke: Invoke
) -> None:
    manifest = write(
        tmp_path / "m.yaml",
        "rows:\n  - {id: cat, prompt: A cat, takes: 2}\n  - {id: jazz, remix_of: cat, prompt: J}\n",
    )
    result = invoke("validate", manifest)
    assert result.exit_code == 2
    assert "remix_of: row 'cat' became 2 videos" in result.stderr


def test_max_cost_in_the_manifest_holds_across_runs(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    rows = "".join(f"  - {{id: r{n}, prompt: p {n}}}\n" for n in range(5))
    manifest = write(tmp_path / "m.yaml", f"max_cost: 1.0\nrows:\n{rows}")  # $0.40 a row
    invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    invoke("run", manifest, "--base-url", mock_api.base_url, *FAST)
    assert mock_api.state.jobs_created == 2
    assert sorted(s["status"] for s in results(manifest).values()).count("skipped_budget") == 3


def test_fitted_images_are_cached_beside_the_manifest_not_over_the_users_files(
    tmp_path: Path, invoke: Invoke
) -> None:
    photo(tmp_path / "wide.jpg", (1920, 1080))
    before = hashlib.sha256((tmp_path / "wide.jpg").read_bytes()).hexdigest()
    manifest = write(
        tmp_path / "m.yaml", "image_fit: cover\nrows:\n  - {prompt: p, image: wide.jpg}\n"
    )
    invoke("validate", manifest)
    cached = list((tmp_path / ".batchgen-cache" / "fitted").iterdir())
    assert len(cached) == 1
    with Image.open(cached[0]) as image:
        assert image.size == (720, 1280)
    assert hashlib.sha256((tmp_path / "wide.jpg").read_bytes()).hexdigest() == before


REMIX = (
    "rows:\n  - {id: jazz, remix_of: cat, prompt: The cat plays jazz}\n"
    "  - {id: cat, prompt: A cat}\n"
)


def test_a_remix_gives_up_when_the_wait_times_out(
    tmp_path: Path, invoke: Invoke, start_mock: Callable[..., RunningMock]
) -> None:
    mock = start_mock(MockConfig(job_duration=3600))
    manifest = write(tmp_path / "m.yaml", REMIX)
    result = invoke(
        "run",
        manifest,
        "--base-url",
        mock.base_url,
        *FAST,
        "--wait",
        "--poll-interval",
        "0.05",
        "--timeout",
        "0.5",
    )
    assert result.exit_code == 4, result.output
    assert set(results(manifest)) == {"cat"}  # the remix was not sent, and will be later


def test_a_remix_whose_source_is_held_back_by_limit_is_not_waited_for(
    tmp_path: Path, invoke: Invoke
) -> None:
    manifest = write(tmp_path / "m.yaml", REMIX)
    result = invoke("run", manifest, "--mock", *FAST, *FOLLOW, "--limit", "1")
    assert result.exit_code == 0, result.output
    assert set(results(manifest)) == {"cat"}
