"""Column checkpoints: every array the columns hold comes back equal (mapped from files),
the restored columns answer and keep updating as the originals do, the files are never
written through, and key rows survive another process's string hashes."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from projections import columnar_views
from projections.columnar import LOAD_ORDER, Columns
from projections.columnar_checkpoint import CheckpointError, decode, encode
from projections.facts import Change
from projections.keyindex import KeyIndex
from projections.snapshot import Filters, Snapshot
from services.api import checkpoints
from services.readmodels.store import Changes
from tests.unit.test_columnar import TZ, fold, year

PLACE = Changes("build-1", 42, "1700000000000-3", None)


def fed(changes: list[Change]) -> Columns:
    records = fold(changes)
    columns = Columns(TZ, Snapshot({"pipeline": records.get("pipeline", {})}).stages)
    for kind in LOAD_ORDER:
        columns.put_many(kind, list(records.get(kind, {}).values()))
    return columns


def equal(a: Any, b: Any, path: str = "columns") -> None:
    """The same state, array by array (dtype, shape, values: NaN equal to NaN)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), path
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            equal(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            equal(x, y, f"{path}[{i}]")
    elif type(a).__module__.startswith("projections."):
        assert type(a) is type(b), path
        mine = {k: v for k, v in vars(a).items()
                if k not in ("_joined", "dirty", "_sorted_hashes", "_sorted_rows", "_recent")}
        equal(mine, {k: vars(b)[k] for k in mine}, path)
    else:
        assert a == b, path


def answers(columns: Columns) -> list[Any]:
    out: list[Any] = []
    for filters in (Filters(), Filters(dims={"team": "T-2"})):
        out.append(columnar_views.funnel(columns, filters))
        out.extend(columnar_views.breakdown(columns, filters, by)
                   for by in ("rep", "team", "source", "month"))
    return out


def written(tmp_path: Path, columns: Columns) -> Path:
    # Every array but empty ones in a file of its own (a small tenant's are mostly small).
    return checkpoints.save(tmp_path, "t", columns, PLACE, TZ, inline_bytes=1)


def test_every_kind_of_array_comes_back_equal_mapped_from_its_file(tmp_path: Path) -> None:
    columns = fed(year().changes)
    columns.trim()
    encoded = encode(columns, inline_bytes=1)
    kinds = {(a.dtype.kind, a.dtype.itemsize, a.ndim) for a in encoded.arrays}
    # Flags, small and large integers, floats with NaN, per-stage matrices, key bytes.
    assert {("b", 1, 1), ("i", 1, 1), ("i", 2, 1), ("i", 4, 1), ("i", 8, 1), ("f", 8, 1),
            ("b", 1, 2), ("f", 8, 2)} <= kinds
    assert any(kind == "S" for kind, _, _ in kinds)
    restored = checkpoints.load(tmp_path, "t", TZ) if written(tmp_path, columns) else None
    assert restored is not None and restored.place == PLACE
    assert isinstance(restored.columns.deals.cols["dwell"], np.memmap)
    equal(columns, restored.columns)
    assert answers(restored.columns) == answers(columns)


def test_restored_columns_keep_taking_changes_and_never_write_their_files(
        tmp_path: Path) -> None:
    changes = year().changes
    half = len(changes) // 2
    original = fed(changes[:half])
    directory = written(tmp_path, original)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    restored = checkpoints.load(tmp_path, "t", TZ)
    assert restored is not None
    later = fold(changes)
    for columns in (original, restored.columns):  # the latest states, as the stream gives
        for kind in LOAD_ORDER:
            columns.put_many(kind, list(later.get(kind, {}).values()))
    equal(original, restored.columns)
    assert answers(restored.columns) == answers(original) == answers(fed(changes))
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_amounts_beyond_int64_stay_python_ints(tmp_path: Path) -> None:
    columns = fed(year().changes)
    deal = next(iter(fold(year().changes)["deal"].values()))
    columns.put("deal", {**deal, "amount": "9" * 30})
    assert columns.deals.cols["amount"].dtype == object
    restored = checkpoints.load(tmp_path, "t", TZ) if written(tmp_path, columns) else None
    assert restored is not None
    equal(columns, restored.columns)
    assert answers(restored.columns) == answers(columns)


def test_a_manifest_that_does_not_match_the_arrays_is_refused(tmp_path: Path) -> None:
    directory = written(tmp_path, fed(year().changes[:2000]))
    manifest = json.loads((directory / checkpoints.MANIFEST).read_text())
    encoded = encode(fed(year().changes[:2000]), inline_bytes=1)
    infos = encoded.infos()
    with pytest.raises(CheckpointError, match="array 0"):
        decode(encoded.state, [infos[0].__class__("<f8", infos[0].shape), *infos[1:]],
               lambda n: encoded.arrays[n])
    for field, value in (("tz", "UTC"), ("format", 99), ("layout", "other")):
        (directory / checkpoints.MANIFEST).write_text(json.dumps({**manifest, field: value}))
        with pytest.raises(CheckpointError):
            checkpoints.load(tmp_path, "t", TZ)
    (directory / checkpoints.MANIFEST).write_text(json.dumps(manifest))
    (directory / checkpoints.STATE).write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError):
        checkpoints.load(tmp_path, "t", TZ)
    assert checkpoints.load(tmp_path, "nobody", TZ) is None


def test_a_new_checkpoint_replaces_the_old_one_whole(tmp_path: Path) -> None:
    written(tmp_path, fed(year().changes[:2000]))
    later = Changes("build-1", 99, "1700000000001-0", None)
    checkpoints.save(tmp_path, "t", fed(year().changes), later, TZ)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # nothing left aside
    restored = checkpoints.load(tmp_path, "t", TZ)
    assert restored is not None and restored.place == later
    equal(fed(year().changes), restored.columns)
    with pytest.raises(ValueError, match="cannot name"):
        checkpoints.save(tmp_path, "../x", fed(year().changes[:10]), later, TZ)


ODD = ["k" * 80, "nul\0", "d-1", "d-2"]


def test_key_rows_survive_another_processes_string_hashes(tmp_path: Path) -> None:
    index = KeyIndex()
    keys = [f"deal-{i}" for i in range(70_000)] + ODD  # some merged, some recent
    rows = index.rows(keys)
    (tmp_path / "index.pickle").write_bytes(pickle.dumps(index))
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    program = (
        "import pickle, json\n"
        f"index = pickle.loads(open({str(tmp_path / 'index.pickle')!r}, 'rb').read())\n"
        f"keys = json.loads(open({str(tmp_path / 'keys.json')!r}).read())\n"
        "print(json.dumps([index.rows(keys), index.rows(['new-1', 'deal-5', 'new-1'])]))\n"
    )
    found = []
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(Path.cwd())})
        found.append(json.loads(out.stdout))
    for again, more in found:
        assert again == rows
        assert more == [len(keys) + 2, rows[5], len(keys) + 2]
