"""The ledger's transcoder: eventsourcing's JSON encoding, written by orjson.

eventsourcing's `JSONTranscoder` encodes each stored event with the standard
library's `json` (a tenth of the ingest writer's CPU). This one writes the same
bytes with orjson: compact separators, UTF-8 unescaped, and every object JSON
cannot hold wrapped as `{"_type_": name, "_data_": ...}` by the same registered
transcodings (the timestamp is the one the ledger's events carry). Decoding is
the library's own, so the relay and a replay read old and new rows alike.

Two things orjson writes differently, each sent back to the library's encoder so
nothing changes meaning: a UUID among the state's values (orjson would write it
as a plain string, not `uuid_hex`), and anything orjson refuses (an integer
beyond 64 bits, a dict key that is not a string). A float is the one thing
written in another spelling (`1e-05` as `0.00001`): the same number when read.
Chosen by `TRANSCODER_TOPIC`, the library's own hook (services/eventstore/ledger.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder

# datetime, date and time go to `default`, so the registered transcodings decide (as in
# the library); dataclasses too, which orjson would otherwise write as objects.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        if isinstance(obj, dict) and any(type(v) is UUID for v in obj.values()):
            return super().encode(obj)
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().encode(obj)  # the library's encoder decides, or raises its error
