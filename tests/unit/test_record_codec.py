"""Read-model records are kept compressed, read back exactly, and old JSON ones still read."""

from __future__ import annotations

import orjson
import pytest
import zstandard

from services.readmodels.codec import decode, encode, encode_json
from tests.history import fold, simulated


@pytest.fixture(scope="module")
def records() -> list[object]:
    folded = fold(simulated(seed=11, days=120))
    return [record for kind in folded.values() for record in kind.values()]


def test_every_record_reads_back_as_it_was_written(records: list[object]) -> None:
    assert [decode(encode(r)) for r in records] == records


def test_records_written_as_json_before_compression_still_read(records: list[object]) -> None:
    assert [decode(orjson.dumps(r)) for r in records] == records


def test_a_record_takes_far_fewer_bytes_than_its_json(records: list[object]) -> None:
    compressed = sum(len(encode(r)) for r in records)
    plain = sum(len(orjson.dumps(r)) for r in records)
    assert compressed < 0.4 * plain, (compressed, plain)


def test_json_text_and_records_encode_alike(records: list[object]) -> None:
    record = records[0]
    assert decode(encode_json(orjson.dumps(record))) == record


def test_a_record_of_an_unknown_dictionary_is_refused_not_misread() -> None:
    other = zstandard.ZstdCompressionDict(zstandard.train_dictionary(
        1024, [orjson.dumps({"id": f"d{i}", "stage": "won", "n": i}) for i in range(400)]
    ).as_bytes())
    raw = zstandard.ZstdCompressor(dict_data=other).compress(b'{"id": "d1"}')
    with pytest.raises(ValueError, match="unknown dictionary"):
        decode(raw)
