"""How a fact record is kept in Redis: its JSON, compressed by zstd with a dictionary.

Records are small (a deal is ~2 kB of JSON) and alike: the same field names and event
types again and again, which plain compression of one small record cannot exploit but a
dictionary trained on records can (a record takes about a quarter of its JSON's bytes).
The zstd frame names its dictionary, so a dictionary trained later is added beside the
older ones, never replacing them; records written as plain JSON (before this codec) still
read.

`python -m bench.records_dictionary OUT` trains a dictionary from simulated years.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import zstandard

_HERE = Path(__file__).parent
# Every dictionary records were ever written with, by file; the newest writes.
_DICTIONARY_FILES = ("records-1.zdict",)
_DICTIONARIES = [zstandard.ZstdCompressionDict((_HERE / name).read_bytes())
                 for name in _DICTIONARY_FILES]
_LEVEL = 3  # past 3 the records shrink by little and the projector's writes cost more


class _Codecs(threading.local):
    """zstd's (de)compressors are not safe to share between threads: one set per thread."""

    def __init__(self) -> None:
        self.compress = zstandard.ZstdCompressor(
            level=_LEVEL, dict_data=_DICTIONARIES[-1], write_content_size=True).compress
        self.decompress = {d.dict_id(): zstandard.ZstdDecompressor(dict_data=d).decompress
                           for d in _DICTIONARIES}


_codecs = _Codecs()


def encode(record: Any) -> bytes:
    return _codecs.compress(orjson.dumps(record))


def encode_json(text: bytes) -> bytes:
    """A record already written as JSON (the scaled simulator renames ids in the text)."""
    return _codecs.compress(text)


def decode(raw: bytes) -> Any:
    if raw[:1] == b"{":  # written as JSON before records were compressed
        return orjson.loads(raw)
    dict_id = zstandard.get_frame_parameters(raw).dict_id
    try:
        decompress = _codecs.decompress[dict_id]
    except KeyError:
        raise ValueError(f"a record compressed with unknown dictionary {dict_id}") from None
    return orjson.loads(decompress(raw))


def train(records: Iterable[Any], size: int = 16_384) -> bytes:
    return zstandard.train_dictionary(size, [orjson.dumps(r) for r in records]).as_bytes()
