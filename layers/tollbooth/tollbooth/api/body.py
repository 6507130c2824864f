"""What a request body must be before any route reads it: UTF-8 JSON, one object, every
key once, bounded in depth and in the digits of a number.

Python's ``json`` lets the last of two equal keys win, recurses until the interpreter's
limit, and turns an integer of over 4,300 digits into an error of its own; each of those
must be a plain 400 here, never a guess and never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

JSON_MEDIA_TYPE = "application/json"
# Our bodies nest three levels at most; this leaves room without letting a body recurse.
MAX_DEPTH = 16
# An amount has at most 15 digits before the point and 3 after.
MAX_NUMBER_LENGTH = 40


class BodyRefused(ValueError):
    """The request's body or headers cannot be read as this API's JSON; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number has more than {MAX_NUMBER_LENGTH} characters")
    return int(text)


def _bounded_float(text: str) -> float:
    # Parsed only so that the contract can refuse it: amounts are never floats.
    if len(text) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number has more than {MAX_NUMBER_LENGTH} characters")
    return float(text)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def strict_json_object(text: str) -> dict[str, Any]:
    """The body as a JSON object; json.JSONDecodeError saying what is wrong with it
    (Powertools' validation turns that into the request's 400), or RequestValidationError
    (a 422) for JSON that is not an object."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} levels deep", text, 0) from None
    except ValueError as error:
        raise json.JSONDecodeError(str(error), text, 0) from None
    if not isinstance(value, dict):
        # Valid JSON of the wrong shape: a 422 like any other shape error, never a guess
        # at which element was meant.
        problem = {"type": "dict_type", "loc": ("body",), "msg": "the body must be a JSON object", "input": {}}
        raise RequestValidationError([problem])
    if _depth(value) > MAX_DEPTH:
        raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} levels deep", text, 0)
    return value


def media_type(content_type: str) -> str:
    """``Application/JSON; charset=utf-8`` -> ``application/json`` (media types are case-insensitive)."""
    return content_type.split(";", 1)[0].strip().lower()


def normalize_body(event: dict[str, Any]) -> None:
    """Check the body is UTF-8 JSON text, and present it as such to the resolver: a body
    that arrived base64-encoded is decoded, and the content type is spelled in lower case.
    Raises BodyRefused."""
    headers = event.get("headers") or {}
    body = event.get("body")
    if not body:
        return
    content_type = headers.get("content-type", "")
    if content_type and media_type(content_type) != JSON_MEDIA_TYPE:
        raise BodyRefused("unsupported_content_type", "send the body as JSON (application/json)")
    if event.get("isBase64Encoded"):
        try:
            event["body"] = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BodyRefused("malformed_body", "the request body must be JSON text in UTF-8") from None
        event["isBase64Encoded"] = False
    if content_type:
        headers["content-type"] = JSON_MEDIA_TYPE
