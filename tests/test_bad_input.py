"""Hostile and broken input, as people really produce it and as an attacker might.

Every case goes through the real CLI twice — ``batchgen validate`` and ``batchgen run``
against the simulated API — and must end the same way: exit 2, a message naming the file
(and the row and column where there is one), no traceback, nothing sent and no results file.

Decisions recorded here:

* a header with no rows (or a YAML with ``rows: []``) is an error, exit 2: far more often
  the wrong file or sheet than a night with nothing to do;
* a 60 MB reference image is a photo or render at its own resolution, so it fails as the
  wrong size, before its bytes are uploaded anywhere (and an image claiming more pixels
  than Pillow's bomb limit fails as such, without being decoded);
* a file that is mostly UTF-8 but has bytes of another encoding fails at the first foreign
  byte, with its row and column, instead of being decoded as GB18030 into fake Chinese;
* a column name close to one batchgen knows (``sceonds``, ``modle``, ``duration``) or one
  the results file uses itself (``status``, ``file``, ``key``) is one problem per column,
  at the header (YAML: the first row that has it);
* text UTF-8 cannot hold (a lone surrogate from a YAML ``\\u`` escape) is refused where
  it is, by row and column, in cells and column names alike.

Large inputs (the 60 MB image, 100,000- and 1,000,000-character prompts) are generated in
temporary folders, not committed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.mock import RunningMock
from tests.bad_input_cases import CASES, check_refused, header_only
from tests.helpers import Invoke


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", CASES)
def test_validate_refuses_it_with_file_row_and_column(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    case = CASES[name]
    folder = tmp_path / "batch"
    folder.mkdir()
    manifest = case.build(folder)
    monkeypatch.chdir(folder)  # messages name files relative to the current folder
    result = invoke("validate", manifest.name)
    check_refused(result.exit_code, result.stdout, result.stderr, case, folder)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", CASES)
def test_run_refuses_it_and_sends_nothing(
    tmp_path: Path,
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    mock_api: RunningMock,
    name: str,
) -> None:
    case = CASES[name]
    folder = tmp_path / "batch"
    folder.mkdir()
    manifest = case.build(folder)
    monkeypatch.chdir(folder)
    result = invoke("run", manifest.name, "--base-url", mock_api.base_url, "--rpm", "6000")
    check_refused(result.exit_code, result.stdout, result.stderr, case, folder)
    assert mock_api.state.create_requests == 0
    assert sum(mock_api.state.requests_by_endpoint.values()) == 0


def test_skip_invalid_does_not_turn_an_empty_manifest_into_success(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, mock_api: RunningMock
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = header_only(tmp_path)
    result = invoke("run", manifest.name, "--base-url", mock_api.base_url, "--skip-invalid")
    assert result.exit_code == 2
    assert "has no rows to send" in result.stderr
    assert mock_api.state.create_requests == 0


def test_a_good_gb18030_sheet_is_still_read(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, mock_api: RunningMock
) -> None:
    """The encoding checks above must not cost the Chinese-Windows users their CSVs."""
    monkeypatch.chdir(tmp_path)
    text = "id,prompt,owner\r\na,一只猫在窗台上晒太阳,张伟\r\nb,夕阳下连绵起伏的山丘,李明\r\n"
    (tmp_path / "gbk.csv").write_bytes(text.encode("gb18030"))
    result = invoke("run", "gbk.csv", "--base-url", mock_api.base_url, "--rpm", "6000")
    assert result.exit_code == 0, result.output
    prompts = sorted(mock_api.state.job_count_by_prompt())
    assert prompts == sorted(["一只猫在窗台上晒太阳", "夕阳下连绵起伏的山丘"])
