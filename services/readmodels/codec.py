"""How a fact record is kept in Redis: its JSON, compressed by zstd with a dictionary.

Records are small (a deal is ~2 kB of JSON) and alike: the same field names and event
types again and again, which plain compression of one small record cannot exploit but a
dictionary trained on records can (a record takes about a fifth of its JSON's bytes).
The kinds Redis holds most of (leads, orders, deals, customers) each have their own
dictionary, trained on that kind alone; the others share one.

A record is one byte naming its dictionary (its place in `_DICTIONARY_FILES`, from 1) and
a zstd frame without the magic number and dictionary id that byte stands for (7 bytes
fewer, where a lead takes ~200). A dictionary trained later is added after the older ones,
never replacing them. Records written before still read: whole zstd frames naming their
dictionary by id, and plain JSON (before this codec).

`python -m bench.records_dictionary OUT [KIND]` trains a dictionary from simulated years.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import zstandard

_HERE = Path(__file__).parent
# Every dictionary records were ever written with, by file (`records-N` for every kind,
# `{kind}-N` for one). Only ever appended to: a record's first byte is the place of its
# dictionary here. A kind writes with its newest own dictionary, else the newest shared one.
_DICTIONARY_FILES = ("records-1.zdict", "customer-1.zdict", "deal-1.zdict", "lead-1.zdict",
                     "order-1.zdict")
_DICTIONARIES = [zstandard.ZstdCompressionDict((_HERE / name).read_bytes())
                 for name in _DICTIONARY_FILES]
_WRITES_WITH = {name.rsplit("-", 1)[0]: tag for tag, name in enumerate(_DICTIONARY_FILES, 1)}
_SHARED = _WRITES_WITH.pop("records")
_JSON, _ZSTD_MAGIC = ord("{"), b"\x28\xb5\x2f\xfd"  # how older records begin
# Level 5's greedy matching, as zstd sets it for inputs of unknown size (it still sizes the
# tables to the record): records ~4% smaller than level 3's for ~3 µs more per record
# written. The level's own settings for inputs this small shrink records less; lazy matching
# (level 6 and up) shrinks them 2-3% more for nearly twice the time, which the projector pays.
_PARAMETERS = zstandard.ZstdCompressionParameters.from_level(
    5, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_dict_id=False, write_content_size=True)


class _Codecs(threading.local):
    """zstd's (de)compressors are not safe to share between threads: one set per thread."""

    def __init__(self) -> None:
        self.writers = {tag: (bytes([tag]), zstandard.ZstdCompressor(
            compression_params=_PARAMETERS, dict_data=_DICTIONARIES[tag - 1]).compress)
            for tag in {_SHARED, *_WRITES_WITH.values()}}
        self.by_tag = {tag: zstandard.ZstdDecompressor(
            dict_data=d, format=zstandard.FORMAT_ZSTD1_MAGICLESS).decompress
            for tag, d in enumerate(_DICTIONARIES, 1)}
        self.by_id = {d.dict_id(): zstandard.ZstdDecompressor(dict_data=d).decompress
                      for d in _DICTIONARIES}


_codecs = _Codecs()


def encode(record: Any, kind: str) -> bytes:
    """A record of `kind` (`deal`, `lead`, ...) as Redis keeps it."""
    return encode_json(orjson.dumps(record), kind)


def encode_json(text: bytes, kind: str) -> bytes:
    """A record already written as JSON (the scaled simulator renames ids in the text)."""
    tag, compress = _codecs.writers[_WRITES_WITH.get(kind, _SHARED)]
    return tag + compress(text)


def decode(raw: bytes) -> Any:
    decompress = _codecs.by_tag.get(raw[0])
    if decompress is not None:
        return orjson.loads(decompress(memoryview(raw)[1:]))
    if raw[0] == _JSON:  # written as JSON before records were compressed
        return orjson.loads(raw)
    if raw[:4] == _ZSTD_MAGIC:  # a whole frame, written before records began with a tag
        dict_id = zstandard.get_frame_parameters(raw).dict_id
        decompress = _codecs.by_id.get(dict_id)
        if decompress is None:
            raise ValueError(f"a record compressed with unknown dictionary {dict_id}")
        return orjson.loads(decompress(raw))
    raise ValueError(f"a record of no known format (first byte {raw[0]})")


def train(records: Iterable[Any], size: int = 16_384) -> bytes:
    return zstandard.train_dictionary(size, [orjson.dumps(r) for r in records]).as_bytes()
