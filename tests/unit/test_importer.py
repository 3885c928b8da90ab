"""`salespulse import`: spreadsheet rows → contract events, refusals → rows. No services."""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from events.parsing import parse_event
from services.importer.convert import Conversion, convert, event_id
from services.importer.mapping import Mapping, MappingError, load_mapping, parse_mapping
from services.importer.reading import Table, read_table
from services.importer.sending import BatchRefused, Refusal, Unreachable, deliver

SHIPPED = Path(__file__).parents[2] / "deploy" / "import" / "crm-opportunities.toml"
HEADER = ("opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date",
          "close_date", "close_value")


def table(*rows: tuple[str, ...]) -> Table:
    return Table(HEADER, [(n, dict(zip(HEADER, r, strict=True)))
                          for n, r in enumerate(rows, start=2)])


def crm() -> Mapping:
    return load_mapping(SHIPPED)


def types(conversion: Conversion, row: int | None = None) -> list[str]:
    return [e.event["type"] for e in conversion.events if row is None or e.row == row]


def data_of(conversion: Conversion, type_: str) -> list[dict[str, Any]]:
    return [e.event["data"] for e in conversion.events if e.event["type"] == type_]


WON = ("O1", "Moses Frase", "GTXPro", "Cancity", "Won", "2016-10-20", "2017-03-01", "1054")
LOST = ("O2", "Moses Frase", "MG Special", "Cancity", "Lost", "2016-11-02", "2017-01-15", "0")
ENGAGING = ("O3", "Zane Levy", "GTX Basic", "", "Engaging", "2017-02-01", "", "")
PROSPECTING = ("O4", "Zane Levy", "GTX Basic", "", "Prospecting", "", "", "")


# --- mapping ----------------------------------------------------------------

def test_the_shipped_crm_mapping_names_every_column_of_the_public_export() -> None:
    mapping = crm()
    assert set(mapping.columns.values()) == set(HEADER)
    assert mapping.values["stage"] == {"Prospecting": "prospecting", "Engaging": "qualification",
                                       "Won": "won", "Lost": "lost"}
    assert mapping.defaults["team_id"] == "imported"
    assert mapping.undated == "skip"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"columns": {"deal_id": "id", "owner_id": "rep", "created_at": "created"}, **extra}


@pytest.mark.parametrize(("document", "named"), [
    ({"columns": {"deal_id": "id", "owner_id": "rep"}}, "columns.created_at"),
    (minimal(columns={"deal_id": "id", "owner_id": "rep", "created_at": "c", "colour": "x"}),
     "columns.colour"),
    (minimal(dates={"timezone": "Mars/Olympus"}), "dates.timezone"),
    (minimal(defaults={"deal_id": "D-1"}), "defaults.deal_id"),
    (minimal(rows={"undated": "guess"}), "rows.undated"),
    (minimal(values={"stage": {"Won": 1}}), "values.stage.Won"),
])
def test_a_mapping_that_cannot_be_used_is_refused_naming_the_key(document: dict[str, Any],
                                                                  named: str) -> None:
    with pytest.raises(MappingError, match=named.replace(".", r"\.")):
        parse_mapping(document)


def test_a_mapped_column_missing_from_the_file_stops_the_import_before_any_row() -> None:
    mapping = parse_mapping(tomllib.loads(SHIPPED.read_text()) | {
        "columns": {"deal_id": "opportunity_id", "owner_id": "agent", "created_at": "engage_date"}})
    with pytest.raises(MappingError, match="'agent' is not in the file"):
        convert(table(WON), mapping, "f.csv")


# --- rows → events ----------------------------------------------------------------

def test_a_won_opportunity_is_created_at_engagement_and_won_at_close_for_its_value() -> None:
    result = convert(table(WON), crm(), "pipeline.csv")
    assert types(result) == ["rep.joined", "customer.created", "deal.created", "deal.won"]
    created, won = result.events[2].event, result.events[3].event
    assert created["occurred_at"] == "2016-10-20T00:00:00+08:00"
    assert created["data"] == {"deal_id": "O1", "owner_id": "Moses Frase",
                               "customer_id": "Cancity", "product": "GTXPro",
                               "stage": "qualification"}
    assert won["occurred_at"] == "2017-03-01T00:00:00+08:00"
    assert won["data"] == {"deal_id": "O1", "amount": "1054"}
    assert data_of(result, "rep.joined") == [{"rep_id": "Moses Frase", "name": "Moses Frase",
                                              "team_id": "imported"}]


def test_a_lost_opportunity_is_lost_at_close_and_an_engaging_one_stays_open_in_its_stage(
) -> None:
    result = convert(table(LOST, ENGAGING), crm(), "f.csv")
    assert types(result, row=2) == ["rep.joined", "customer.created", "deal.created",
                                    "deal.lost"]
    assert types(result, row=3) == ["rep.joined", "deal.created"]
    engaging = data_of(result, "deal.created")[1]
    assert engaging["stage"] == "qualification" and "customer_id" not in engaging


def test_every_event_meets_the_contract() -> None:
    result = convert(table(WON, LOST, ENGAGING), crm(), "f.csv")
    for item in result.events:
        parse_event(item.event)


def test_each_rep_and_customer_is_introduced_once_before_their_first_event() -> None:
    later_in_file_earlier_in_time = ("O9", "Moses Frase", "GTXPro", "Cancity", "Won",
                                     "2016-01-05", "2016-02-01", "10")
    result = convert(table(WON, LOST, later_in_file_earlier_in_time), crm(), "f.csv")
    assert types(result).count("rep.joined") == 1
    assert types(result).count("customer.created") == 1
    first = result.events[0].event
    assert first["type"] == "rep.joined" and first["occurred_at"].startswith("2016-01-05")
    assert result.events[1].event["type"] == "customer.created"


def test_events_are_sorted_by_event_time_whatever_the_row_order() -> None:
    rows = (WON, LOST, ENGAGING,
            ("O5", "Zane Levy", "GTXPro", "Isdom", "Won", "2016-09-01", "2016-09-01", "70"))
    result = convert(table(*rows), crm(), "f.csv")
    moments = [datetime.fromisoformat(e.event["occurred_at"]) for e in result.events]
    assert moments == sorted(moments)
    same_day = [e.event["type"] for e in result.events if e.row == 5]
    assert same_day == ["rep.joined", "customer.created", "deal.created", "deal.won"]


def test_ids_are_the_same_on_every_import_of_the_same_file_and_differ_between_files() -> None:
    first = [e.event["id"] for e in convert(table(WON, LOST), crm(), "a.csv").events]
    again = [e.event["id"] for e in convert(table(WON, LOST), crm(), "a.csv").events]
    other = [e.event["id"] for e in convert(table(WON, LOST), crm(), "b.csv").events]
    assert first == again
    assert len(set(first)) == len(first)
    assert not set(first) & set(other)
    assert event_id("a.csv", 2, "deal.won") in first


def test_prospecting_rows_without_a_date_are_skipped_not_rejected_when_the_mapping_says_so(
) -> None:
    result = convert(table(WON, PROSPECTING), crm(), "f.csv")
    assert [s.row for s in result.skipped] == [3]
    assert not result.rejected
    strict = parse_mapping(tomllib.loads(SHIPPED.read_text()) | {"rows": {"undated": "reject"}})
    refused = convert(table(WON, PROSPECTING), strict, "f.csv")
    assert [(r.row, r.column) for r in refused.rejected] == [(3, "engage_date")]


def test_dated_stage_columns_become_stage_changes_between_creation_and_close() -> None:
    raw = tomllib.loads(SHIPPED.read_text())
    raw["stage_dates"] = {"proposal": "proposal_date"}
    raw["rows"] = {"created_stage": "prospecting"}
    mapping = parse_mapping(raw)
    header = (*HEADER, "proposal_date")
    rows = [(2, dict(zip(header, (*WON, "2016-12-01"), strict=True)))]
    result = convert(Table(header, rows), mapping, "f.csv")
    assert types(result, row=2)[-3:] == ["deal.created", "deal.stage_changed", "deal.won"]
    change = next(e.event for e in result.events if e.event["type"] == "deal.stage_changed")
    assert change["data"]["stage"] == "proposal"
    assert change["occurred_at"].startswith("2016-12-01")


# --- bad rows ---------------------------------------------------------------------

def test_bad_rows_are_rejected_with_row_column_and_reason_and_the_rest_proceed() -> None:
    rows = (
        WON,
        ("O2", "Moses Frase", "GTXPro", "Cancity", "Won", "2016-13-40", "2017-01-01", "5"),
        ("", "Moses Frase", "GTXPro", "Cancity", "Lost", "2016-10-01", "2017-01-01", "0"),
        ("O4", "Moses Frase", "GTXPro", "Cancity", "Closed", "2016-10-01", "2017-01-01", "0"),
        ("O5", "Moses Frase", "GTXPro", "Cancity", "Won", "2017-02-01", "2017-01-01", "5"),
        ("O1", "Zane Levy", "GTXPro", "Cancity", "Lost", "2016-10-01", "2017-01-01", "0"),
        ("O7", "Zane Levy", "GTXPro", "Cancity", "Won", "2016-10-01", "2017-01-01", "lots"),
        ("O8", "Zane Levy", "GTXPro", "Cancity", "Won", "2016-10-01", "", "5"),
        ENGAGING[:0] + ("O9",) + ENGAGING[1:],
    )
    result = convert(table(*rows), crm(), "f.csv")
    reasons = {r.row: (r.column, r.message) for r in result.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert reasons[3][0] == "engage_date" and "2016-13-40" in reasons[3][1]
    assert reasons[4][0] == "opportunity_id" and "empty" in reasons[4][1]
    assert reasons[5][0] == "deal_stage" and "'Closed' is not one of" in reasons[5][1]
    assert reasons[6][0] == "close_date" and "before engage_date" in reasons[6][1]
    assert reasons[7][0] == "opportunity_id" and "already on row 2" in reasons[7][1]
    assert reasons[8] == ("close_value", "'lots' is not an amount")
    assert reasons[9][0] == "close_date" and "won deal needs its close date" in reasons[9][1]
    assert {e.row for e in result.events} == {2, 10}


def test_a_value_the_contract_refuses_is_rejected_locally_naming_the_column() -> None:
    negative = ("O1", "Moses Frase", "GTXPro", "Cancity", "Won", "2016-10-20", "2017-03-01",
                "-5")
    result = convert(table(negative, LOST), crm(), "f.csv")
    assert [(r.row, r.column) for r in result.rejected] == [(2, "close_value")]
    assert {e.row for e in result.events} == {3}


def test_without_a_team_column_or_default_the_reps_rows_are_rejected_saying_how_to_fix_it(
) -> None:
    raw = tomllib.loads(SHIPPED.read_text())
    del raw["defaults"]
    result = convert(table(WON, LOST), parse_mapping(raw), "f.csv")
    assert [r.row for r in result.rejected] == [2, 3]
    assert all("defaults.team_id" in r.message for r in result.rejected)


# --- Excel ------------------------------------------------------------------------

def test_an_excel_sheet_with_date_and_number_cells_reads_like_the_csv(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    sheet.append(["O1", "Moses Frase", "GTXPro", "Cancity", "Won", date(2016, 10, 20),
                  datetime(2017, 3, 1), 1054])
    sheet.append(["O2", "Moses Frase", "MG Special", "Cancity", "Lost", "2016-11-02",
                  "2017-01-15", 0.0])
    sheet.append([None] * len(HEADER))  # a blank line at the end is no row
    path = tmp_path / "pipeline.xlsx"
    book.save(path)
    csv = tmp_path / "pipeline.csv"
    csv.write_text(",".join(HEADER) + "\n" + "\n".join(",".join(r) for r in (WON, LOST)) + "\n")
    from_excel = convert(read_table(path, crm()), crm(), "pipeline")
    from_csv = convert(read_table(csv, crm()), crm(), "pipeline")
    assert from_excel.rows == 2 and not from_excel.rejected
    assert [e.event for e in from_excel.events] == [e.event for e in from_csv.events]


# --- delivery ---------------------------------------------------------------------

class FakeApi:
    """The ingest API's batch rules in miniature: all or nothing, duplicates by id, deals
    in `refuse` refused, reps in `known` already existing."""

    def __init__(self, refuse: set[str] = frozenset(), known: set[str] = frozenset(),  # type: ignore[assignment]
                 down: bool = False) -> None:
        self.refuse, self.known, self.down = refuse, known, down
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests = 0

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        self.requests += 1
        if self.down:
            raise Unreachable("connection refused")
        refusals = [Refusal(i, "data.deal_id", f"deal {e['data']['deal_id']!r} already exists")
                    for i, e in enumerate(events)
                    if e["type"] == "deal.created" and e["data"]["deal_id"] in self.refuse]
        refusals += [Refusal(i, "data.rep_id", f"rep {e['data']['rep_id']!r} already exists")
                     for i, e in enumerate(events)
                     if e["type"] == "rep.joined" and e["data"]["rep_id"] in self.known]
        if refusals:
            raise BatchRefused(refusals)
        statuses = ["duplicate" if e["id"] in self.stored else "accepted" for e in events]
        self.stored.update((e["id"], e) for e in events)
        return statuses


def test_a_refused_event_rejects_its_row_and_the_rest_of_the_batch_is_sent_again() -> None:
    result = convert(table(WON, LOST, ENGAGING), crm(), "f.csv")
    api = FakeApi(refuse={"O2"})
    delivery = deliver(result.events, api, crm(), batch_size=100)
    assert [(r.row, r.column) for r in delivery.rejected] == [(3, "opportunity_id")]
    assert "refused by the API (deal.created)" in delivery.rejected[0].message
    assert {e["data"].get("deal_id") for e in api.stored.values()} == {None, "O1", "O3"}
    assert delivery.accepted == len(api.stored) == len(result.events) - 2
    assert api.requests == 2


def test_a_row_refused_in_one_batch_sends_none_of_its_later_events() -> None:
    result = convert(table(WON, LOST, ENGAGING), crm(), "f.csv")
    api = FakeApi(refuse={"O2"})
    deliver(result.events, api, crm(), batch_size=1)
    assert not [e for e in api.stored.values() if e["data"].get("deal_id") == "O2"]


def test_importing_the_same_events_again_stores_nothing_new() -> None:
    result = convert(table(WON, LOST, ENGAGING), crm(), "f.csv")
    api = FakeApi()
    first = deliver(result.events, api, crm(), batch_size=3)
    again = deliver(result.events, api, crm(), batch_size=3)
    assert first.accepted == len(result.events) and first.duplicate == 0
    assert again.accepted == 0 and again.duplicate == len(result.events)


def test_a_rep_that_already_exists_is_not_introduced_again_and_no_row_is_rejected() -> None:
    result = convert(table(WON, ENGAGING), crm(), "f.csv")
    api = FakeApi(known={"Moses Frase"})
    delivery = deliver(result.events, api, crm())
    assert not delivery.rejected and delivery.dropped == 1
    assert [e["data"]["rep_id"] for e in api.stored.values() if e["type"] == "rep.joined"] == \
        ["Zane Levy"]


def test_an_unreachable_api_stops_the_import_with_what_was_delivered() -> None:
    result = convert(table(WON), crm(), "f.csv")
    with pytest.raises(Unreachable) as stopped:
        deliver(result.events, FakeApi(down=True), crm())
    assert stopped.value.delivery.accepted == 0  # type: ignore[attr-defined]


def test_direct_mode_writes_into_the_event_store_with_the_same_refusal_handling(
        tmp_path: Path) -> None:
    from services.eventstore.ledger import SalesLedger
    from services.importer.sending import LedgerSink

    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                              "SQLITE_DBNAME": str(tmp_path / "events.sqlite")})
    try:
        ledger.record([{"id": "earlier", "type": "deal.created",
                        "occurred_at": "2016-01-01T00:00:00+08:00",
                        "data": {"deal_id": "O2", "owner_id": "someone"}}], tenant="default")
        result = convert(table(WON, LOST, ENGAGING), crm(), "f.csv")
        sink = LedgerSink(ledger, "default", "Asia/Shanghai")
        delivery = deliver(result.events, sink, crm())
        assert [(r.row, r.column) for r in delivery.rejected] == [(3, "opportunity_id")]
        assert "already exists" in delivery.rejected[0].message
        won = ledger.load("default", "deal", "O1")
        assert won is not None and won.state is not None and won.state.status == "won"
        again = deliver(result.events, sink, crm())
        assert again.accepted == 0 and again.duplicate == delivery.accepted
    finally:
        ledger.close()
