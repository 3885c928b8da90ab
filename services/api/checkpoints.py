"""Column checkpoints on disk: a starting API maps a tenant's columns from files instead of
decoding every record from Redis, then follows the change stream from the place they
reflect (docs/PERFORMANCE.md, "Fast start").

One directory per tenant under COLUMNS_CHECKPOINT_DIR: `manifest.json` (format, the
change stream's place, the code's column layout, each array's dtype and shape),
`state.pickle` and `<n>.npy` per array. Written whole in a temporary directory, then
renamed into place, so a reader finds the old checkpoint or the new one, never half.
Arrays are mapped copy-on-write: API processes on one host share the pages until one
of them changes a row, which then becomes its own.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_checkpoint import (
    FORMAT,
    INLINE_BYTES,
    ArrayInfo,
    CheckpointError,
    decode,
    encode,
    layout,
)
from services.readmodels.store import Changes

log = structlog.get_logger("api.checkpoints")
MANIFEST = "manifest.json"
STATE = "state.pickle"


@dataclass
class Checkpoint:
    columns: Columns
    place: Changes


def _tenant_dir(root: Path, tenant: str) -> Path:
    # Tenant ids are checked at the API's edge; a separator here would leave the root.
    if not tenant or tenant.startswith(".") or "/" in tenant or "\\" in tenant:
        raise ValueError(f"tenant {tenant!r} cannot name a checkpoint directory")
    return root / tenant


def save(root: Path, tenant: str, columns: Columns, place: Changes, tz: str,
         inline_bytes: int = INLINE_BYTES) -> Path:
    """Write the tenant's checkpoint (replacing the previous one whole); its directory."""
    encoded = encode(columns, inline_bytes)
    final = _tenant_dir(root, tenant)
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{tenant}.{uuid.uuid4().hex}.new"
    temporary.mkdir()
    try:
        for number, array in enumerate(encoded.arrays):
            with open(temporary / f"{number}.npy", "wb") as out:
                np.save(out, array, allow_pickle=False)
                out.flush()
                os.fsync(out.fileno())
        (temporary / STATE).write_bytes(encoded.state)
        manifest = {
            "format": FORMAT, "layout": layout(), "tz": tz,
            "place": {"build": place.build, "revision": place.revision,
                      "last_id": place.last_id},
            "arrays": [{"dtype": info.dtype, "shape": list(info.shape)}
                       for info in encoded.infos()],
        }
        # The manifest last: a directory without one is never read.
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _swap_in(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return final


def _swap_in(new: Path, final: Path) -> None:
    """`new` becomes `final`. A directory cannot replace a non-empty one in one rename: the
    old one moves aside first (a reader in between finds none and loads from Redis)."""
    old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
    try:
        final.rename(old)
    except FileNotFoundError:
        old = None  # type: ignore[assignment]
    new.rename(final)
    if old is not None:
        # Processes that mapped its files keep them until they let go (Linux unlink).
        shutil.rmtree(old, ignore_errors=True)


def load(root: Path, tenant: str, tz: str) -> Checkpoint | None:
    """The tenant's checkpoint mapped into memory; None when there is none. Raises
    CheckpointError for one of another format, layout or time zone, or damaged."""
    directory = _tenant_dir(root, tenant)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"unreadable manifest: {exc}") from exc
    try:
        if manifest["format"] != FORMAT:
            raise CheckpointError(f"format {manifest['format']}, this code reads {FORMAT}")
        if manifest["layout"] != layout():
            raise CheckpointError("made by code with other columns")
        if manifest["tz"] != tz:
            raise CheckpointError(f"made for time zone {manifest['tz']}, not {tz}")
        place = Changes(str(manifest["place"]["build"]), int(manifest["place"]["revision"]),
                        str(manifest["place"]["last_id"]), None)
        infos = [ArrayInfo(str(a["dtype"]), tuple(int(n) for n in a["shape"]))
                 for a in manifest["arrays"]]
        state = (directory / STATE).read_bytes()
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise CheckpointError(f"incomplete checkpoint: {exc!r}") from exc

    def mapped(number: int) -> NDArray[Any]:
        try:
            # Copy-on-write: `Table` updates rows in place; growing copies (no own data).
            array: NDArray[Any] = np.load(directory / f"{number}.npy", mmap_mode="c",
                                          allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"array {number}: {exc}") from exc
        return array

    return Checkpoint(decode(state, infos, mapped), place)
