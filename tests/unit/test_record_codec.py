"""Read-model records are kept compressed, read back exactly, each kind with the dictionary
it writes with now, and records written in every older way still read."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import zstandard

from services.readmodels.codec import decode, encode, encode_json
from tests.history import fold, simulated

DICTIONARIES = Path(__file__).parents[2] / "services" / "readmodels"
Kinded = list[tuple[str, object]]


@pytest.fixture(scope="module")
def records() -> Kinded:
    folded = fold(simulated(seed=11, days=120))
    return [(kind, record) for kind, by_key in folded.items() for record in by_key.values()]


def _dictionary(name: str) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict((DICTIONARIES / name).read_bytes())


def test_every_record_reads_back_as_it_was_written(records: Kinded) -> None:
    assert [decode(encode(r, kind)) for kind, r in records] == [r for _, r in records]


def test_records_written_as_json_before_compression_still_read(records: Kinded) -> None:
    assert [decode(orjson.dumps(r)) for _, r in records] == [r for _, r in records]


def test_whole_zstd_frames_written_with_the_first_dictionary_still_read(
        records: Kinded) -> None:
    # How every record was written before they began with their dictionary's byte.
    before = zstandard.ZstdCompressor(level=3, dict_data=_dictionary("records-1.zdict"),
                                      write_content_size=True)
    assert [decode(before.compress(orjson.dumps(r))) for _, r in records] == \
        [r for _, r in records]


@pytest.mark.parametrize(("kind", "tag", "dictionary"), [
    ("deal", 3, "deal-1.zdict"), ("lead", 4, "lead-1.zdict"),
    ("customer", 2, "customer-1.zdict"), ("order", 5, "order-1.zdict"),
    ("rep", 1, "records-1.zdict"), ("target", 1, "records-1.zdict")])
def test_each_kind_writes_with_its_own_dictionary_or_the_shared_one(
        records: Kinded, kind: str, tag: int, dictionary: str) -> None:
    record = next(r for k, r in records if k == kind)
    raw = encode(record, kind)
    assert raw[0] == tag
    plain = zstandard.ZstdDecompressor(dict_data=_dictionary(dictionary),
                                       format=zstandard.FORMAT_ZSTD1_MAGICLESS)
    assert orjson.loads(plain.decompress(raw[1:])) == record


def _tagged(tag: int, dictionary: str, record: object) -> bytes:
    compress = zstandard.ZstdCompressor(
        dict_data=_dictionary(dictionary),
        compression_params=zstandard.ZstdCompressionParameters.from_level(
            3, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_dict_id=False,
            write_content_size=True)).compress
    return bytes([tag]) + compress(orjson.dumps(record))


def test_a_record_reads_with_the_dictionary_its_byte_names_not_its_kinds(
        records: Kinded) -> None:
    # A kind given a newer dictionary still reads what it wrote with the one before.
    record = next(r for k, r in records if k == "lead")
    assert decode(_tagged(1, "records-1.zdict", record)) == record


@pytest.mark.parametrize("kind", ["deal", "lead", "customer", "order"])
def test_a_kind_takes_fewer_bytes_with_its_own_dictionary(records: Kinded, kind: str) -> None:
    own = sum(len(encode(r, kind)) for k, r in records if k == kind)
    shared = sum(len(encode(r, "rep")) for k, r in records if k == kind)
    assert own < shared, (own, shared)


def test_a_record_takes_far_fewer_bytes_than_its_json(records: Kinded) -> None:
    compressed = sum(len(encode(r, kind)) for kind, r in records)
    plain = sum(len(orjson.dumps(r)) for _, r in records)
    assert compressed < 0.3 * plain, (compressed, plain)


def test_json_text_and_records_encode_alike(records: Kinded) -> None:
    kind, record = records[0]
    assert encode_json(orjson.dumps(record), kind) == encode(record, kind)


def test_a_record_of_an_unknown_dictionary_is_refused_not_misread() -> None:
    other = zstandard.ZstdCompressionDict(zstandard.train_dictionary(
        1024, [orjson.dumps({"id": f"d{i}", "stage": "won", "n": i}) for i in range(400)]
    ).as_bytes())
    raw = zstandard.ZstdCompressor(dict_data=other).compress(b'{"id": "d1"}')
    with pytest.raises(ValueError, match="unknown dictionary"):
        decode(raw)


def test_a_record_of_no_known_format_is_refused() -> None:
    with pytest.raises(ValueError, match="no known format"):
        decode(b"\xee" + b"\x00" * 12)
