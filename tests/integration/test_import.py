"""`salespulse import` of a CSV shaped like the public CRM opportunity export, through the
real CLI, API, event store, broker and projector: rejected rows are exactly the bad ones,
and per-agent win rate and median cycle equal pandas over the CSV itself."""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from services.importer.convert import convert
from services.importer.mapping import load_mapping
from services.importer.reading import read_table
from tests.conftest import Stack
from tests.integration.test_event_path import (
    api_view,
    comparable,
    oracle_breakdown,
    oracle_funnel,
    wait_for_projection,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
MAPPING = ROOT / "deploy" / "import" / "crm-opportunities.toml"
HEADER = ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date",
          "close_date", "close_value"]
AGENTS = ["Moses Frase", "Darcel Schlecht", "Zane Levy", "Anna Snelling", "Vicki Laflamme",
          "Maureen Marcano", "Versie Hillebrand", "Kary Hendrixson", "Cassey Cress"]
PRODUCTS = ["GTX Basic", "GTX Pro", "MG Special", "MG Advanced", "GTX Plus Basic",
            "GTX Plus Pro", "GTK 500"]
TAKEN_ID = "TAKEN001"  # a deal the tenant already has: the API refuses the row that reuses it


def opportunities(seed: int = 2016, count: int = 1000) -> tuple[list[list[str]], set[int]]:
    """Rows like sales_pipeline.csv, and the spreadsheet row numbers deliberately broken."""
    rng = random.Random(seed)
    accounts = [f"Account {i:02d}" for i in range(60)]
    rows: list[list[str]] = []
    for i in range(count):
        stage = rng.choices(["Won", "Lost", "Engaging", "Prospecting"], [45, 30, 15, 10])[0]
        engage = date(2016, 10, 20) + timedelta(days=rng.randrange(400))
        close = engage + timedelta(days=rng.randrange(0, 140))
        closed = stage in ("Won", "Lost")
        rows.append([
            f"OPP{i:05d}", rng.choice(AGENTS), rng.choice(PRODUCTS),
            rng.choice(accounts) if closed or rng.random() < 0.5 else "", stage,
            "" if stage == "Prospecting" else engage.isoformat(),
            close.isoformat() if closed else "",
            str(rng.randrange(38, 30_000)) if stage == "Won" else ("0" if stage == "Lost" else ""),
        ])
    kept = next(r for r in rows if r[4] != "Prospecting")
    bad: dict[int, dict[int, str]] = {  # row index -> column index -> broken value
        17: {5: "2017-02-30"},                                      # no such day
        101: {0: ""},                                               # no opportunity id
        230: {4: "Closed Won"},                                     # not a stage of the export
        347: {4: "Won", 5: "2017-05-10", 6: "2017-04-01", 7: "900"},  # closed before engaged
        512: {0: kept[0]},                                          # an id already used
        640: {4: "Won", 5: "2017-01-03", 6: "2017-02-03", 7: "n/a"},  # not an amount
        777: {4: "Lost", 5: "2017-01-03", 6: "", 7: "0"},           # lost, but when?
        901: {0: TAKEN_ID, 4: "Won", 5: "2017-01-03", 6: "2017-03-01", 7: "500"},  # API refuses
    }
    bad = {index: change for index, change in bad.items() if index < count}
    for index, change in bad.items():
        for column, value in change.items():
            rows[index][column] = value
    return rows, {index + 2 for index in bad}  # header is row 1


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def salespulse_import(stack: Stack, file: Path, rejected: Path) -> tuple[int, str]:
    run = subprocess.run(
        [sys.executable, "-m", "services.cli", "import", str(file), "--mapping", str(MAPPING),
         "--api", stack.url, "--api-key", stack.admin_key, "--batch-size", "500",
         "--rejected-out", str(rejected)],
        cwd=ROOT, env={**os.environ, "COLUMNS": "300"}, capture_output=True, text=True,
        timeout=300)
    return run.returncode, run.stdout + run.stderr


def summary(output: str) -> dict[str, int]:
    return {k.replace(" ", "_"): int(v) for k, v in re.findall(
        r"(rows read|imported|rejected|skipped|events accepted|duplicate) (\d+)", output)}


def per_agent(path: Path, bad_rows: set[int]) -> pd.DataFrame:
    """Win rate, median cycle (engage → close, days), counts and won value per agent, from
    the CSV alone."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["row"] = frame.index + 2
    good = frame[~frame["row"].isin(bad_rows) & (frame["engage_date"] != "")]
    won = good[good["deal_stage"] == "Won"].copy()
    won["cycle"] = (pd.to_datetime(won["close_date"]) - pd.to_datetime(won["engage_date"])).dt.days
    by_agent = good.groupby("sales_agent")
    out = pd.DataFrame({
        "deals": by_agent.size(),
        "open": by_agent["deal_stage"].apply(lambda s: int((s == "Engaging").sum())),
        "won": by_agent["deal_stage"].apply(lambda s: int((s == "Won").sum())),
        "lost": by_agent["deal_stage"].apply(lambda s: int((s == "Lost").sum())),
    })
    out["win_rate"] = out["won"] / (out["won"] + out["lost"])
    out["cycle_days_median"] = won.groupby("sales_agent")["cycle"].median()
    out["won_value"] = won.groupby("sales_agent")["close_value"].apply(
        lambda values: sum((Decimal(v) for v in values), Decimal(0)))
    return out


def rejected_rows(path: Path) -> set[int]:
    with path.open() as source:
        return {int(r["row"]) for r in csv.DictReader(source)}


def test_an_opportunity_export_imports_with_per_agent_figures_equal_to_pandas(
        stack: Stack, tmp_path: Path) -> None:
    taken = {"id": "pre-existing-deal", "type": "deal.created",
             "occurred_at": "2016-10-01T09:00:00+08:00",
             "data": {"deal_id": TAKEN_ID, "owner_id": "someone-else"}}
    assert stack.post([taken]).accepted == 1
    rows, bad = opportunities()
    path = write_csv(tmp_path / "sales_pipeline.csv", rows)

    code, output = salespulse_import(stack, path, tmp_path / "rejected.csv")

    assert code == 3, output  # some rows rejected, the rest imported
    assert rejected_rows(tmp_path / "rejected.csv") == bad
    prospecting = sum(1 for r in rows if r[4] == "Prospecting")
    counts = summary(output)
    assert counts["rows_read"] == len(rows)
    assert counts["rejected"] == len(bad) and counts["skipped"] == prospecting
    assert counts["imported"] == len(rows) - len(bad) - prospecting

    # The same events sent live: what the importer would send, less the rows it rejected.
    mapping = load_mapping(MAPPING)
    converted = convert(read_table(path, mapping), mapping, path.name).events
    live = [taken] + [e.event for e in converted if e.introduces or e.row not in bad]
    assert counts["events_accepted"] == len(live) - 1
    wait_for_projection(stack, live)

    expected = per_agent(path, bad)
    with stack.client() as client:
        answer = {r["key"]: r for r in api_view(client, "/v1/breakdown", by="rep")["rows"]}
        assert set(answer) == set(AGENTS) | {"someone-else"}
        for agent in AGENTS:
            want = expected.loc[agent]
            row = answer[agent]
            assert (row["deals"], row["open"], row["won"], row["lost"]) == \
                (want["deals"], want["open"], want["won"], want["lost"]), agent
            assert row["win_rate"] == pytest.approx(want["win_rate"], rel=1e-9, abs=1e-9)
            assert row["cycle_days_median"] == pytest.approx(want["cycle_days_median"],
                                                             rel=1e-9, abs=1e-9)
            assert row["won_value"] == want["won_value"]

        # Replayed history gives the numbers of the same events sent live.
        assert api_view(client, "/v1/funnel") == oracle_funnel(live)
        for by in ("rep", "team", "product", "month", "quarter"):
            assert api_view(client, "/v1/breakdown", by=by) == oracle_breakdown(live, by), by
        before = {by: api_view(client, "/v1/breakdown", by=by) for by in ("rep", "product")}

        again, output = salespulse_import(stack, path, tmp_path / "rejected-again.csv")
        assert again == 3, output
        assert summary(output)["events_accepted"] == 0
        assert summary(output)["duplicate"] == len(live) - 1
        wait_for_projection(stack, live)
        assert comparable(before) == {by: api_view(client, "/v1/breakdown", by=by)
                                      for by in ("rep", "product")}


def test_an_unreachable_api_exits_with_its_own_code(tmp_path: Path) -> None:
    rows, _bad = opportunities(count=20)
    path = write_csv(tmp_path / "small.csv", rows)
    run = subprocess.run(
        [sys.executable, "-m", "services.cli", "import", str(path), "--mapping", str(MAPPING),
         "--api", "http://127.0.0.1:9"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 4, run.stderr
    assert "unreachable" in run.stderr
