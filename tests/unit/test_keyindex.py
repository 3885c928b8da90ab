"""The key index hands every distinct key one row for good, as a dict would, whatever the
keys look like and even when their hashes collide."""

from __future__ import annotations

import random
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import keyindex
from projections.keyindex import FIRST_ROW, MAX_WIDTH, MERGE_AT, KeyIndex
from tests.depth import examples


def reference(batches: list[list[str | None]]) -> list[list[int]]:
    """What a plain dict gives: rows from FIRST_ROW in order of first sight, 0 for none."""
    seen: dict[str, int] = {}
    out = []
    for batch in batches:
        out.append([seen.setdefault(k, FIRST_ROW + len(seen)) if k else 0 for k in batch])
    return out


def index_rows(index: KeyIndex, batches: list[list[str | None]]) -> list[list[int]]:
    return [index.rows(batch) for batch in batches]


keys = st.one_of(st.none(), st.just(""), st.text(max_size=8),
                 st.sampled_from(["D-1", "D-2", "a\0", "a", "a\0\0", "x" * (MAX_WIDTH + 3)]))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.lists(keys, max_size=12), max_size=8))
def test_rows_are_those_a_dict_would_give(batches: list[list[str | None]]) -> None:
    assert index_rows(KeyIndex(), batches) == reference(batches)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(keys, max_size=12), max_size=8), st.integers(0, 3),
       st.integers(1, 4))
def test_keys_sharing_a_hash_never_share_a_row(batches: list[list[str | None]],
                                               buckets: int, merge_at: int) -> None:
    # Every key hashes into one of a handful of values: nearly every key collides, and
    # the new keys join the sorted arrays every few keys.
    with patch.object(keyindex, "MERGE_AT", merge_at):
        index = KeyIndex(hasher=lambda key: len(key) % (buckets + 1))
        assert index_rows(index, batches) == reference(batches)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(keys, max_size=12), max_size=8), st.integers(1, 4))
def test_rows_survive_merges_every_few_keys(batches: list[list[str | None]],
                                            merge_at: int) -> None:
    with patch.object(keyindex, "MERGE_AT", merge_at):
        assert index_rows(KeyIndex(), batches) == reference(batches)


def test_each_row_gives_back_its_key_including_odd_ones() -> None:
    index = KeyIndex(hasher=lambda key: 42)
    names = ["L-1", "L-2", "é-ü", "z" * (MAX_WIDTH + 1), "n\0", "a" * 20]
    rows = index.rows(names)
    assert [index.key(row) for row in rows] == names


def test_many_keys_across_merges_keep_their_rows() -> None:
    rng = random.Random(5)
    names = [f"D-{rng.randrange(10**9)}.{i}" for i in range(3 * MERGE_AT + 17)]
    index = KeyIndex()
    first = [row for start in range(0, len(names), 5_000)
             for row in index.rows(names[start:start + 5_000])]
    assert first == list(range(FIRST_ROW, FIRST_ROW + len(names)))
    shuffled = list(range(len(names)))
    rng.shuffle(shuffled)
    again = index.rows([names[i] for i in shuffled])
    assert again == [first[i] for i in shuffled]
    assert index.size == FIRST_ROW + len(names)


def test_a_key_held_only_in_compact_form_costs_tens_of_bytes() -> None:
    index = KeyIndex()
    n = 4 * MERGE_AT
    index.rows([f"L-0.{i:06d}" for i in range(n)])
    assert index.nbytes() / n < 60


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=30, unique=True),
       st.integers(0, 3), st.randoms(use_true_random=False))
def test_rows_come_in_the_order_sorted_puts_their_keys(
        names: list[str], buckets: int, rng: random.Random) -> None:
    # Odd keys (too long, ending in NUL, or a shared hash) sort the slow way, the rest as
    # bytes: both must be str's code point order.
    index = KeyIndex(hasher=lambda key: len(key) % (buckets + 1) if buckets else hash(key))
    rows = index.rows(names)
    picked = rng.sample(rows, k=len(rows) // 2 + (len(rows) % 2))
    order = index.sorted_order(np.array(picked, dtype=np.int64))
    assert [index.key(picked[i]) for i in order] == sorted(index.key(r) for r in picked)
