"""Reading and validating what a create or remix sends, as strictly as the real provider
(using a :class:`Profile`): unknown fields, values, prompt length, the reference image."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from PIL import Image

from batchgen.mock.failures import ApiFailure, bad, invalid_value, unknown_parameter
from batchgen.profile import Profile

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
CORE_FIELDS = ("model", "prompt", "seconds", "size")


@dataclass
class Upload:
    """An uploaded ``input_reference``: its bytes and declared content type."""

    data: bytes
    content_type: str | None


async def read_body(
    request: web.Request, image_field: str = "input_reference"
) -> tuple[dict[str, Any], Upload | None]:
    """The fields of a multipart or JSON body, and the uploaded image (the part named
    ``image_field``) when there is one."""
    if request.content_type == "multipart/form-data":
        return await _read_multipart(request, image_field)
    if request.content_type == "application/json":
        return await _read_json(request), None
    message = (
        f"Unsupported content type '{request.content_type}': send multipart/form-data or JSON."
    )
    raise ApiFailure(400, message)


async def _read_multipart(
    request: web.Request, image_field: str
) -> tuple[dict[str, Any], Upload | None]:
    fields: dict[str, Any] = {}
    upload: Upload | None = None
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader) or not part.name:
            raise ApiFailure(400, "Malformed multipart body: every part needs a name.")
        if part.name in fields or (part.name == image_field and upload is not None):
            raise ApiFailure(400, f"Duplicate parameter: '{part.name}'.", param=part.name)
        if part.filename is None:
            fields[part.name] = await part.text()
        elif part.name == image_field:
            data = await part.read(decode=True)
            upload = Upload(bytes(data), part.headers.get(hdrs.CONTENT_TYPE))
        else:
            raise unknown_parameter(part.name)
    return fields, upload


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.text())
    except ValueError:
        raise ApiFailure(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise ApiFailure(400, "The JSON body must be an object.")
    return data


def validate_create(raw: Mapping[str, Any], profile: Profile) -> dict[str, str]:
    """The fields to create a job with, defaults filled in, or a 400 as the provider sends."""
    raw = _in_our_names(raw, profile)
    allowed = {*CORE_FIELDS, "input_reference", *profile.extra_fields}
    for name in raw:
        if name not in allowed:
            raise unknown_parameter(name)
    _validate_reference_object(raw.get("input_reference"))
    fields = {"prompt": validate_prompt(raw.get("prompt"), profile.max_prompt_chars)}
    for name in ("model", "seconds", "size"):
        value = raw.get(name, profile.defaults.get(name))
        fields[name] = _require_string(name, value)
    if fields["model"] in profile.models:
        _validate_known_model(fields, profile)
    elif profile.other_models:
        _validate_other_model(fields)
    else:
        raise invalid_value("model", fields["model"], tuple(profile.models))
    fields.update(_validate_extras(raw, profile))
    return fields


def _in_our_names(raw: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    """``raw`` with the provider's field names (``duration``…) turned into ours; a relay
    that wants an integer gets one in JSON, kept here as its text."""
    ours = {theirs: our for our, theirs in profile.field_names.items()}
    renamed: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ours and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        renamed[ours.get(name, name)] = value
    return renamed


def _validate_known_model(fields: Mapping[str, str], profile: Profile) -> None:
    if fields["seconds"] not in profile.seconds:
        raise invalid_value("seconds", fields["seconds"], profile.seconds)
    if fields["size"] not in profile.models[fields["model"]]:
        raise invalid_value("size", fields["size"], profile.models[fields["model"]])


def _validate_other_model(fields: Mapping[str, str]) -> None:
    """A model the profile does not list (a relay's weekly addition): generic checks only."""
    if not fields["seconds"].isdigit() or int(fields["seconds"]) <= 0:
        raise bad("seconds", "invalid_value", "Invalid 'seconds': expected a whole number.")
    width, _, height = fields["size"].partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise bad("size", "invalid_size", "Invalid 'size': expected WIDTHxHEIGHT.")


def validate_prompt(value: object, max_chars: int) -> str:
    """The prompt, or the 400 the provider sends for a missing, empty or too long one."""
    if value is None:
        raise bad("prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.")
    prompt = _require_string("prompt", value)
    if not prompt:
        message = "Invalid 'prompt': empty string. Expected a string with minimum length 1."
        raise bad("prompt", "empty_string", message)
    if len(prompt) > max_chars:
        message = (
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{max_chars}, but got a string with length {len(prompt)} instead."
        )
        raise bad("prompt", "string_above_max_length", message)
    return prompt


def _require_string(name: str, value: object) -> str:
    if not isinstance(value, str):
        message = f"Invalid type for '{name}': expected a string, but got {type(value).__name__}."
        raise bad(name, "invalid_type", message)
    return value


def _validate_extras(raw: Mapping[str, Any], profile: Profile) -> dict[str, str]:
    extras: dict[str, str] = {}
    for name, spec in profile.extra_fields.items():
        if name not in raw:
            continue
        value = raw[name]
        if spec.boolean and isinstance(value, bool):
            value = "true" if value else "false"
        allowed = ("true", "false") if spec.boolean else spec.values
        text = _require_string(name, value)
        if allowed is not None and text not in allowed:
            raise invalid_value(name, text, allowed)
        extras[name] = text
    return extras


def _validate_reference_object(value: object) -> None:
    """JSON ``input_reference``: an object with exactly one of ``image_url`` or ``file_id``."""
    if value is None:
        return
    if isinstance(value, dict) and len(value) == 1:
        ((name, ref),) = value.items()
        if name in ("image_url", "file_id") and isinstance(ref, str) and ref:
            return
    message = "Invalid 'input_reference': provide exactly one of 'image_url' or 'file_id'."
    raise bad("input_reference", "invalid_value", message)


def validate_upload(upload: Upload, size: str) -> None:
    """The reference image: an allowed image type, decodable, exactly the video's size."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared not in IMAGE_TYPES:
        message = (
            f"Invalid file type for 'input_reference': '{declared or 'none'}'. "
            "Supported types are image/jpeg, image/png and image/webp."
        )
        raise bad("input_reference", "invalid_image_format", message)
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            image.load()
            actual_format, actual_size = image.format, image.size
    except Exception:  # Pillow raises many types for bad data; all mean "not an image"
        message = "Invalid image: 'input_reference' could not be decoded."
        raise bad("input_reference", "invalid_image", message) from None
    if actual_format != IMAGE_TYPES[declared]:
        message = f"Invalid image: declared {declared} but the data is {actual_format}."
        raise bad("input_reference", "invalid_image", message)
    width, height = (int(n) for n in size.split("x"))
    if actual_size != (width, height):
        message = (
            f"Inpaint image must match the requested width and height ({width}x{height}); "
            f"got {actual_size[0]}x{actual_size[1]}."
        )
        raise bad("input_reference", "invalid_image_size", message)
