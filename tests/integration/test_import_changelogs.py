"""`salespulse import` of the three CRMs' change logs (tests/data), through the real CLI, API,
event store, broker and projector: the rejected rows are exactly the bad ones, each deal ends
as its log says, and the same rows shuffled into another file are all duplicates."""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.importer.changelog import convert_changes
from services.importer.changelog_mapping import parse_change_mapping
from services.importer.mapping import read_document
from services.importer.reading import read_table
from tests.conftest import Stack
from tests.integration.test_event_path import wait_for_projection

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
MAPPINGS = ROOT / "deploy" / "import"


def _crm(mapping: str, log: str, deals: str | None, rejected: set[int],
         skipped: int) -> dict[str, Any]:
    return {"mapping": MAPPINGS / mapping, "log": DATA / log,
            "deals": DATA / deals if deals else None, "rejected": rejected, "skipped": skipped}


# The rows each sample gets wrong, read off the files by hand: unknown stages, bad dates and
# amounts, an empty deal id, changes after a close; and the rows with nothing to import
# (repeated, deleted, fields not imported, an empty amount).
CRMS = {
    "salesforce": _crm("salesforce-opportunity-history.toml", "salesforce/OpportunityHistory.csv",
                       "salesforce/Opportunity.csv", {5, 9, 13, 18}, 2),
    "pipedrive": _crm("pipedrive-deal-changelog.toml", "pipedrive/deal_changes.csv", None,
                      {8, 10, 13, 19}, 3),
    "hubspot": _crm("hubspot-deal-property-history.toml", "hubspot/deal_property_history.csv",
                    None, {4, 17}, 2),
}
# How each deal ends, read off the logs by hand: (status, amount, rep, stage while open).
ENDS = {
    "0065g00000Dl01AAA": ("won", "13000", "0055g00000Us01AAA", None),
    "0065g00000Dl02AAA": ("lost", "8000", "0055g00000Us02AAA", None),
    "0065g00000Dl03AAA": ("open", "25000", "0055g00000Us01AAA", "negotiation"),
    "0065g00000Dl04AAA": ("won", "5000", "0055g00000Us02AAA", None),
    "0065g00000Dl05AAA": ("open", "700", "0055g00000Us03AAA", "qualification"),
    "101": ("won", "2000", "12", None),
    "102": ("lost", "3200", "12", None),
    "103": ("open", None, "13", "negotiation"),
    "9001": ("won", "5500", "7001", None),
    "9002": ("lost", None, "7002", None),
    "9003": ("open", "12000", "7002", "proposal"),
}


def salespulse_import(stack: Stack, crm: dict[str, Any], log: Path,
                      rejected: Path) -> tuple[int, str]:
    deals = ["--deals", str(crm["deals"])] if crm["deals"] else []
    run = subprocess.run(
        [sys.executable, "-m", "services.cli", "import", str(log), "--mapping",
         str(crm["mapping"]), *deals, "--api", stack.url, "--api-key", stack.admin_key,
         "--batch-size", "7", "--rejected-out", str(rejected)],
        cwd=ROOT, env={**os.environ, "COLUMNS": "300"}, capture_output=True, text=True,
        timeout=300)
    return run.returncode, run.stdout + run.stderr


def summary(output: str) -> dict[str, int]:
    return {k.replace(" ", "_"): int(v) for k, v in re.findall(
        r"(rows read|imported|rejected|skipped|events accepted|duplicate) (\d+)", output)}


def rejected_rows(path: Path) -> set[int]:
    with path.open() as source:
        return {int(r["row"]) for r in csv.DictReader(source)}


def shuffled_copy(source: Path, target: Path, seed: int) -> Path:
    lines = source.read_text().splitlines(keepends=True)
    body = lines[1:]
    random.Random(seed).shuffle(body)
    target.write_text(lines[0] + "".join(body))
    return target


def converted(crm: dict[str, Any]) -> list[dict[str, Any]]:
    mapping = parse_change_mapping(read_document(crm["mapping"]))
    deals = read_table(crm["deals"], mapping) if crm["deals"] else None
    return [e.event for e in convert_changes(read_table(crm["log"], mapping), mapping,
                                             deals).events]


def deal_ends(stack: Stack) -> dict[str, tuple[str, str | None, str, str | None]]:
    with stack.client() as client:
        response = client.get("/v1/export/deals", params={"format": "json"})
    assert response.status_code == 200, response.text
    return {d["deal_id"]: (d["status"], _plain(d["amount"]), d["rep"],
                           d["stage"] if d["status"] == "open" else None)
            for d in response.json()["deals"]}


def _plain(amount: str | None) -> str | None:
    """`13000.00` → `13000`; no amount (or 0) → None."""
    value = Decimal(amount or 0)
    return None if value == 0 else format(value.normalize(), "f")


# docs/METRICS.md, "Time": a history's order is the instant, then creation before changes
# before outcomes, then the event id (written out here, not imported from the product).
_FIRST = {"rep.joined", "customer.created", "lead.created", "deal.created", "order.booked"}
_LAST = {"deal.won", "deal.lost", "lead.converted", "lead.disqualified"}


def in_contract_order(event: dict[str, Any]) -> tuple[datetime, int, str]:
    kind = event["type"]
    return (datetime.fromisoformat(event["occurred_at"]).astimezone(UTC),
            0 if kind in _FIRST else 2 if kind in _LAST else 1, event["id"])


def test_three_crms_change_logs_import_and_a_shuffled_copy_is_all_duplicates(
        stack: Stack, tmp_path: Path) -> None:
    live: list[dict[str, Any]] = []
    accepted: dict[str, int] = {}
    for name, crm in CRMS.items():
        code, output = salespulse_import(stack, crm, crm["log"], tmp_path / f"{name}-rej.csv")
        assert code == 3, output  # some rows rejected, the rest imported
        assert rejected_rows(tmp_path / f"{name}-rej.csv") == crm["rejected"], output
        events = converted(crm)
        counts = summary(output)
        rows = sum(1 for _ in crm["log"].open()) - 1
        assert counts["rows_read"] == rows
        assert (counts["rejected"], counts["skipped"]) == (len(crm["rejected"]), crm["skipped"])
        assert counts["imported"] == rows - len(crm["rejected"]) - crm["skipped"]
        assert counts["events_accepted"] == len(events), output
        accepted[name] = len(events)
        live += events

    live.sort(key=in_contract_order)
    wait_for_projection(stack, live)
    assert deal_ends(stack) == ENDS
    with stack.client() as client:
        funnel = client.get("/v1/funnel").json()
    assert funnel["loss_reasons"] == {"Price too high": 1, "Went with a competitor": 1,
                                      "unspecified": 1}

    for seed, (name, crm) in enumerate(CRMS.items()):
        copy = shuffled_copy(crm["log"], tmp_path / f"{name}-shuffled.csv", seed)
        code, output = salespulse_import(stack, crm, copy, tmp_path / f"{name}-rej2.csv")
        assert code == 3, output
        counts = summary(output)
        assert (counts["events_accepted"], counts["duplicate"]) == (0, accepted[name]), output
        assert counts["rejected"] == len(crm["rejected"])
    wait_for_projection(stack, live)
    assert deal_ends(stack) == ENDS
