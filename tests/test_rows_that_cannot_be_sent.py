"""Rows no run could send right: shared keys, text UTF-8 cannot hold, remix cycles.

Without ``--skip-invalid`` each stops the run before anything is sent (see the cases in
tests/test_bad_input.py). With it, through the real CLI against the simulated API: the
bad rows are recorded ``invalid``, every other row is sent exactly once, and a rerun
neither crashes nor pays again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.mock import RunningMock
from batchgen.validate.links import looks_like_job_id
from tests.helpers import FAST, Invoke, results, write


def statuses(manifest: Path) -> dict[str, str]:
    return {key: state["status"] for key, state in results(manifest).items()}


@pytest.mark.timeout(60)
def test_a_lone_surrogate_is_one_invalid_row_and_the_rows_after_it_are_sent(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = write(
        tmp_path / "night.yaml",
        "rows:\n"
        "  - {id: a, prompt: A cat}\n"
        '  - {id: b, prompt: "caf\\udc81 noir"}\n'
        "  - {id: c, prompt: A dog, owner: mia}\n",
    )
    args = ("run", manifest, "--base-url", mock_api.base_url, "--skip-invalid", *FAST)
    first = invoke(*args)
    assert first.exit_code == 1, first.output  # a row needs attention
    assert "Traceback" not in first.output
    assert statuses(manifest) == {"a": "queued", "b": "invalid", "c": "queued"}
    assert (
        "prompt: character 4 (\\udc81) cannot be written as UTF-8"
        in (results(manifest)["b"]["error_message"])
    )
    again = invoke(*args)
    assert again.exit_code == 1, again.output
    assert mock_api.state.create_requests == 2


@pytest.mark.timeout(60)
def test_an_id_equal_to_a_take_key_never_pays_one_key_twice(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    hero = "rows:\n  - {id: hero, prompt: Hero shot, takes: 2}\n"
    manifest = write(tmp_path / "night.yaml", hero + "  - {id: 'hero[take2]', prompt: Other}\n")
    checked = invoke("validate", manifest)
    assert checked.exit_code == 2
    assert "night.yaml:2: id: the key 'hero[take2]' would be used by rows 2, 3" in checked.stderr
    first = invoke("run", manifest, "--base-url", mock_api.base_url, "--skip-invalid", *FAST)
    assert first.exit_code == 1, first.output
    assert statuses(manifest) == {"hero[take1]": "queued", "hero[take2]": "invalid"}
    assert mock_api.state.job_count_by_prompt() == {"Hero shot": 1}

    write(manifest, hero + "  - {id: other, prompt: Other}\n")  # the fix: another id
    fixed = invoke("run", manifest, "--base-url", mock_api.base_url, "--retry-rejected", *FAST)
    assert fixed.exit_code == 0, fixed.output
    assert mock_api.state.job_count_by_prompt() == {"Hero shot": 2, "Other": 1}


@pytest.mark.timeout(60)
def test_a_remix_cycle_is_invalid_and_the_other_rows_are_sent(
    tmp_path: Path, invoke: Invoke, mock_api: RunningMock
) -> None:
    manifest = write(
        tmp_path / "night.yaml",
        "rows:\n"
        "  - {id: a, remix_of: b, prompt: A}\n"
        "  - {id: b, remix_of: a, prompt: B}\n"
        "  - {id: c, prompt: C}\n",
    )
    result = invoke("run", manifest, "--base-url", mock_api.base_url, "--skip-invalid", *FAST)
    assert result.exit_code == 1, result.output
    assert statuses(manifest) == {"a": "invalid", "b": "invalid", "c": "queued"}
    assert "remix cycle a -> b -> a (rows 2, 3)" in results(manifest)["a"]["error_message"]
    assert mock_api.state.create_requests == 1


@pytest.mark.parametrize(
    "text",
    [
        "video_68d7512d07848190b3e45da0ecbebcde",
        "task_01HX3Y7Z9QK2M",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    ],
)
def test_provider_job_ids_look_like_job_ids(text: str) -> None:
    assert looks_like_job_id(text)


@pytest.mark.parametrize("text", ["cat", "the cat", "hero-shot", "autumn_cover", "video_"])
def test_row_ids_and_words_do_not(text: str) -> None:
    assert not looks_like_job_id(text)
