"""What every event's `data` must stay within, so that every step after the API can carry it.

The relay, the projector, the alerter, a rebuild and a backup all write events as JSON
(orjson, which stops at 255 levels and at 64-bit integers), Kafka takes messages of at most
a megabyte, and the views hold every name in memory. The declared fields have their own
bounds (events/contract.py); these hold for the whole of `data`, fields of later versions
included.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from events.errors import FieldError

MAX_DEPTH = 32  # levels of objects and arrays in `data`, itself the first
MAX_DATA_BYTES = 64 * 1024  # `data` as compact UTF-8 JSON
MAX_TEXT = 10_000  # characters of any string value in `data` (declared fields: less)
MAX_KEY = 128  # characters of any object key in `data`
SMALLEST_INT, LARGEST_INT = -(2**63), 2**64 - 1  # what JSON writers carry exactly

EXTRA_FIELDS_SCHEMA: dict[str, Any] = {
    "description": f"A field of a later version: any JSON value nested at most {MAX_DEPTH} "
                   f"levels deep (counting `data`), strings of at most {MAX_TEXT:,} "
                   f"characters, keys of at most {MAX_KEY}, integers within 64 bits; the "
                   f"whole `data` at most {MAX_DATA_BYTES:,} bytes as JSON.",
}


def data_errors(data: Any) -> list[FieldError]:
    """Why `data` cannot be carried (empty when it can); each reason names its field.

    Walked without recursion, so no depth of input can exhaust the stack."""
    if not isinstance(data, dict):
        return []  # the contract says what `data` must be
    stack: list[tuple[Any, str, int]] = [(data, "data", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return [FieldError(path, f"nested deeper than {MAX_DEPTH} levels")]
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and len(key) > MAX_KEY:
                return [FieldError(f"{path}.{key[:MAX_KEY]}…",
                                   f"a key longer than {MAX_KEY} characters")]
            where = f"{path}.{key}"
            if isinstance(item, str):
                if len(item) > MAX_TEXT:
                    return [FieldError(where, f"longer than {MAX_TEXT:,} characters")]
            elif isinstance(item, dict | list):
                stack.append((item, where, depth + 1))
            elif isinstance(item, bool) or item is None:
                pass
            elif isinstance(item, int):
                if not SMALLEST_INT <= item <= LARGEST_INT:
                    return [FieldError(where, "an integer beyond 64 bits")]
            elif isinstance(item, float) and not math.isfinite(item):
                return [FieldError(where, "not a finite number")]
    try:
        size = len(orjson.dumps(data, default=str))
    except TypeError as exc:  # lone surrogates, keys that are not strings: not JSON
        # (default=str: a Python caller's Decimal amounts are written as the API would)
        return [FieldError("data", f"not representable as JSON: {exc}")]
    if size > MAX_DATA_BYTES:
        return [FieldError("data", f"{size:,} bytes as JSON; at most {MAX_DATA_BYTES:,}")]
    return []
