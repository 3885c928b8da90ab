"""`salespulse import` of CRM change logs: rows in any order → the same contract events.
Pure conversion and delivery against a fake sink; no services."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.parsing import parse_event
from services.importer.changelog import convert_changes
from services.importer.changelog_mapping import ChangeMapping, parse_change_mapping
from services.importer.changelog_rows import parse_amount, parse_moment
from services.importer.convert import Conversion
from services.importer.mapping import MappingError, read_document
from services.importer.reading import Table, read_table
from services.importer.sending import BatchRefused, Refusal, deliver
from tests.depth import examples

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
SHIPPED = {"salesforce": "salesforce-opportunity-history", "pipedrive": "pipedrive-deal-changelog",
           "hubspot": "hubspot-deal-property-history"}
FILES = {"salesforce": ("salesforce/OpportunityHistory.csv", "salesforce/Opportunity.csv"),
         "pipedrive": ("pipedrive/deal_changes.csv", None),
         "hubspot": ("hubspot/deal_property_history.csv", None)}
PIPEDRIVE = ("id", "deal_id", "change_time", "field", "old_value", "new_value", "actor_user_id")


def shipped(crm: str) -> ChangeMapping:
    return parse_change_mapping(read_document(ROOT / "deploy" / "import" / f"{SHIPPED[crm]}.toml"))


def sample(crm: str) -> tuple[Table, Table | None]:
    mapping = shipped(crm)
    log, deals = FILES[crm]
    return (read_table(DATA / log, mapping),
            read_table(DATA / deals, mapping) if deals else None)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    return Table(header, [(n, dict(zip(header, r, strict=True)))
                          for n, r in enumerate(rows, start=2)])


def pipedrive(*rows: tuple[str, ...], **mapping: Any) -> Conversion:
    document = {"format": "pipedrive", "defaults": {"team_id": "imported"}} | mapping
    return convert_changes(table(PIPEDRIVE, list(rows)), parse_change_mapping(document))


def shuffled(source: Table, order: list[int]) -> Table:
    """The same rows in another order, numbered as that file would number them."""
    return Table(source.columns, [(n, source.rows[i][1]) for n, i in enumerate(order, start=2)])


def story(conversion: Conversion, deal: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.event["type"], e.event["occurred_at"][:19], e.event["data"])
            for e in conversion.events if e.event["data"].get("deal_id") == deal]


def events(conversion: Conversion) -> list[dict[str, Any]]:
    return [e.event for e in conversion.events]


def reasons(conversion: Conversion) -> Counter[tuple[str, str]]:
    return Counter((r.column, r.message) for r in conversion.rejected)


def skips(conversion: Conversion) -> Counter[str]:
    """Why rows were skipped (which of two repeated rows is the repeat depends on the order)."""
    return Counter("repeated" if s.message.startswith("the same as row") else s.message
                   for s in conversion.skipped)


# --- cells ----------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "decimal", "amount"), [
    ("1,234.50", ".", "1234.50"), ("$12,500.00", ".", "12500.00"), ("€1,500.00", ".", "1500.00"),
    ("EUR 1.234,50", ",", "1234.50"), ("12 000 USD", ".", "12000"), ("0", ".", "0"),
    ("-5", ".", "-5"),  # the contract refuses it, naming the column
])
def test_amounts_read_with_thousands_separators_and_currency_symbols(raw: str, decimal: str,
                                                                     amount: str) -> None:
    assert parse_amount(raw, decimal) == amount


@pytest.mark.parametrize("raw", ["lots", "1.2.3", "$", "12 apples", "1e5"])
def test_what_is_not_an_amount_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        parse_amount(raw)


def test_change_times_read_iso_epoch_milliseconds_and_the_mappings_formats() -> None:
    mapping = parse_change_mapping({"format": "salesforce", "dates": {
        "timezone": "Asia/Shanghai", "formats": ["%m/%d/%Y %I:%M %p"]}})
    utc = datetime(2024, 1, 9, 9, 0, tzinfo=UTC)
    assert parse_moment("2024-01-09T09:00:00.000Z", mapping) == utc
    assert parse_moment("1704790800000", mapping) == utc
    assert parse_moment("2024-01-09 17:00:00", mapping) == utc  # naive: the mapping's zone
    assert parse_moment("01/09/2024 5:00 PM", mapping) == utc
    with pytest.raises(ValueError, match="'2024-13-45' is not a date"):
        parse_moment("2024-13-45", mapping)


# --- mapping ----------------------------------------------------------------------

@pytest.mark.parametrize("crm", list(SHIPPED))
def test_the_shipped_mappings_read_each_crms_standard_export(crm: str) -> None:
    mapping = shipped(crm)
    assert mapping.format == crm and mapping.team_id == "imported"
    log, _deals = sample(crm)
    assert set(mapping.required) <= set(mapping.columns)
    assert {mapping.column(r) for r in mapping.required} <= set(log.columns)


@pytest.mark.parametrize(("document", "named"), [
    ({"format": "zoho"}, "format"),
    ({"format": "pipedrive", "columns": {"colour": "x"}}, "columns.colour"),
    ({"format": "pipedrive", "fields": {"title": "name"}}, "fields.title"),
    ({"format": "hubspot", "values": {"stage": {"closedwon": "won"}}}, "values.stage.closedwon"),
    ({"format": "hubspot", "values": {"stage": {"x": "proposal"}}, "outcomes": {"won": ["x"]}},
     "values.stage.x"),
    ({"format": "hubspot", "values": {"region": {}}}, "values.region"),
    ({"format": "hubspot", "dates": {"timezone": "Mars/Olympus"}}, "dates.timezone"),
    ({"format": "hubspot", "defaults": {"stage": "x"}}, "defaults.stage"),
    ({"format": "hubspot", "amounts": {"decimal": ";"}}, "amounts.decimal"),
])
def test_a_mapping_that_cannot_be_used_is_refused_naming_the_key(document: dict[str, Any],
                                                                  named: str) -> None:
    with pytest.raises(MappingError, match=named.replace(".", r"\.")):
        parse_change_mapping(document)


def test_a_column_the_mapping_names_but_the_file_lacks_stops_the_import() -> None:
    mapping = parse_change_mapping({"format": "pipedrive", "columns": {"field": "field_key"}})
    with pytest.raises(MappingError, match="'field_key' is not in the file"):
        convert_changes(table(PIPEDRIVE, []), mapping)


def test_optional_default_columns_the_export_lacks_are_not_needed() -> None:
    header = ("deal_id", "change_time", "field", "new_value")
    mapping = parse_change_mapping({"format": "pipedrive", "defaults": {
        "team_id": "t", "owner_id": "R1"}})
    result = convert_changes(table(header, [("D1", "2024-01-01 10:00", "stage_id", "2")]),
                             mapping)
    assert [e.event["type"] for e in result.events] == ["rep.joined", "deal.created"]


# --- the sample exports -----------------------------------------------------------

def test_a_salesforce_history_joined_with_its_opportunities_tells_each_deals_story() -> None:
    log, deals = sample("salesforce")
    result = convert_changes(log, shipped("salesforce"), deals)
    won = "0065g00000Dl01AAA"
    assert story(result, won) == [
        ("deal.created", "2024-01-08T09:00:00", {
            "deal_id": won, "owner_id": "0055g00000Us01AAA", "customer_id": "0015g00000Ac01AAA",
            "amount": "10000.00", "stage": "prospecting", "expected_close": "2024-03-31"}),
        ("deal.amount_changed", "2024-01-20T10:00:00", {"deal_id": won, "amount": "12500.00"}),
        ("deal.stage_changed", "2024-01-20T10:00:00", {"deal_id": won, "stage": "qualification"}),
        ("deal.close_date_changed", "2024-02-10T11:30:00",
         {"deal_id": won, "expected_close": "2024-04-15"}),
        ("deal.stage_changed", "2024-02-10T11:30:00", {"deal_id": won, "stage": "proposal"}),
        ("deal.stage_changed", "2024-03-01T08:00:00", {"deal_id": won, "stage": "negotiation"}),
        ("deal.amount_changed", "2024-03-20T16:00:00", {"deal_id": won, "amount": "13000.00"}),
        ("deal.close_date_changed", "2024-03-20T16:00:00",
         {"deal_id": won, "expected_close": "2024-03-20"}),
        ("deal.won", "2024-03-20T16:00:00", {"deal_id": won, "amount": "13000.00"}),
    ]
    # Two changes in the same second are ordered by the history row's Id.
    assert [s[2].get("stage") for s in story(result, "0065g00000Dl02AAA")][1:4] == \
        [None, "qualification", "proposal"]
    # A custom stage the Opportunity export marks closed and won is a win.
    assert story(result, "0065g00000Dl04AAA")[-1][0] == "deal.won"
    assert {(r.row, r.column) for r in result.rejected} == {
        (5, "StageName"), (9, "Amount"), (13, "CreatedDate"), (18, "OpportunityId")}
    assert "'Discovery' is not a mapped stage" in result.rejected[0].message
    assert "after the deal was won" in result.rejected[1].message
    assert [(s.row, s.message) for s in result.skipped] == [
        (14, "the same as row 7"), (16, "a deleted history row is not imported")]


def test_a_pipedrive_log_creates_deals_from_old_values_and_closes_them_by_status() -> None:
    log, _ = sample("pipedrive")
    result = convert_changes(log, shipped("pipedrive"))
    assert [s[0] for s in story(result, "101")] == [
        "deal.created", "deal.stage_changed", "deal.close_date_changed", "deal.amount_changed",
        "deal.owner_changed", "deal.won"]
    assert story(result, "101")[-1][2] == {"deal_id": "101", "amount": "2000"}
    created, changed, lost = story(result, "102")
    # The deal existed before its first logged change: the replaced amount is its first.
    assert created[2] == {"deal_id": "102", "owner_id": "12", "amount": "0",
                          "stage": "qualification"}
    assert changed[2]["amount"] == "3200"
    assert lost[2] == {"deal_id": "102", "reason": "Price too high"}  # logged 5 s later
    assert {(r.row, r.column) for r in result.rejected} == {
        (8, "new_value"), (10, "new_value"), (13, "new_value"), (19, "new_value")}
    assert Counter(s.message for s in result.skipped) == Counter({
        "field 'title' is not imported": 1, "field 'won_time' is not imported": 1,
        "the same as row 12": 1})


def test_a_hubspot_property_history_gives_owner_moves_and_the_lost_reason() -> None:
    log, _ = sample("hubspot")
    result = convert_changes(log, shipped("hubspot"))
    assert story(result, "9002") == [
        ("deal.created", "2024-01-20T10:00:00",
         {"deal_id": "9002", "owner_id": "7001", "stage": "qualification"}),
        ("deal.owner_changed", "2024-02-01T10:00:00", {"deal_id": "9002", "owner_id": "7002"}),
        ("deal.lost", "2024-02-10T10:00:00",
         {"deal_id": "9002", "reason": "Went with a competitor"}),
    ]
    assert story(result, "9001")[0][2]["expected_close"] == "2024-03-31"  # epoch ms
    assert story(result, "9001")[-1] == ("deal.won", "2024-02-20T09:00:00",
                                         {"deal_id": "9001", "amount": "5500"})
    assert {(r.row, r.column) for r in result.rejected} == {(4, "value"), (17, "value")}


@pytest.mark.parametrize("crm", list(SHIPPED))
def test_every_event_meets_the_contract_in_event_time_order_reps_first(crm: str) -> None:
    log, deals = sample(crm)
    result = convert_changes(log, shipped(crm), deals)
    for item in result.events:
        parse_event(item.event)
    moments = [datetime.fromisoformat(e["occurred_at"]) for e in events(result)]
    assert moments == sorted(moments)
    introduced: set[str] = set()
    for event in events(result):
        if event["type"] == "rep.joined":
            introduced.add(event["data"]["rep_id"])
        owner = event["data"].get("owner_id")
        assert owner is None or owner in introduced


@pytest.mark.parametrize("crm", list(SHIPPED))
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.randoms(use_true_random=False))
def test_any_row_order_of_a_sample_export_gives_the_same_events(crm: str,
                                                                 seed: random.Random) -> None:
    log, deals = sample(crm)
    mapping = shipped(crm)
    order = list(range(len(log.rows)))
    seed.shuffle(order)
    base, other = convert_changes(log, mapping, deals), convert_changes(
        shuffled(log, order), mapping, deals)
    assert events(other) == events(base)
    assert reasons(other) == reasons(base)


# --- generated logs ---------------------------------------------------------------

_FIELDS = st.sampled_from([
    ("stage_id", st.sampled_from(["1", "2", "3", "4", "5", "99", ""])),
    ("value", st.sampled_from(["0", "1,000", "$2,500.00", "2500", "lots", ""])),
    ("status", st.sampled_from(["won", "lost", "open", "deleted"])),
    ("user_id", st.sampled_from(["11", "12", "13"])),
    ("expected_close_date", st.sampled_from(["2024-02-01", "2024-03-15", "someday"])),
    ("lost_reason", st.sampled_from(["Price", "Timing", ""])),
    ("org_id", st.sampled_from(["O1", "O2"])),
    ("title", st.just("renamed")),
])


@st.composite
def pipedrive_logs(draw: st.DrawFn) -> list[tuple[str, ...]]:
    """Change logs of a few deals: ties in time, with or without a sequence column,
    repeated rows, odd values, changes after the close."""
    numbered = draw(st.booleans())
    rows: list[tuple[str, ...]] = []
    start = datetime(2024, 1, 1, 9, 0)
    for deal in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 8))):
            key, values = draw(_FIELDS)
            at = start + timedelta(hours=draw(st.integers(0, 6)) + 24 * deal)
            rows.append((str(len(rows) + 1) if numbered else "", f"D{deal}",
                         at.strftime("%Y-%m-%d %H:%M:%S"), key, draw(values), draw(values), "11"))
    repeats = draw(st.lists(st.sampled_from(rows), max_size=3))
    return rows + repeats


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=pipedrive_logs(), seed=st.randoms(use_true_random=False))
def test_any_row_order_of_a_generated_log_gives_the_same_events_ids_and_reasons(
        log: list[tuple[str, ...]], seed: random.Random) -> None:
    mapping = {"format": "pipedrive", "defaults": {"team_id": "imported"}}
    again = list(log)
    seed.shuffle(again)
    base, other = pipedrive(*log, **mapping), pipedrive(*again, **mapping)
    assert events(other) == events(base)
    assert reasons(other) == reasons(base)
    assert skips(other) == skips(base)
    assert len({e["id"] for e in events(base)}) == len(events(base))
    for item in base.events:
        parse_event(item.event)
    closed: dict[str, str] = {}
    for event in events(base):  # nothing happens to a deal after its close
        deal = event["data"].get("deal_id")
        assert deal not in closed, (event, closed)
        if event["type"] in ("deal.won", "deal.lost"):
            closed[deal] = event["occurred_at"]


def test_a_longer_export_of_the_same_log_repeats_the_ids_of_the_shorter() -> None:
    log, _ = sample("pipedrive")
    mapping = shipped("pipedrive")
    rows = log.rows
    early = Table(log.columns, [r for r in rows if r[1]["change_time"] < "2024-01-20"])
    first, full = convert_changes(early, mapping), convert_changes(log, mapping)
    assert {e["id"] for e in events(first)} < {e["id"] for e in events(full)}


# --- sharp edges ------------------------------------------------------------------

def test_a_deal_first_seen_closed_is_created_in_the_mappings_stage_then_closed() -> None:
    result = pipedrive(("1", "D1", "2024-01-01 10:00", "status", "open", "won", "11"),
                       ("2", "D1", "2024-01-01 10:00", "value", "", "900", "11"),
                       defaults={"team_id": "t", "created_stage": "proposal"})
    assert [(t, d.get("stage"), d.get("amount")) for t, _at, d in story(result, "D1")] == [
        ("deal.created", "proposal", "900"), ("deal.won", None, "900")]


def test_a_reopening_and_changes_after_the_close_are_rejected_but_a_late_reason_is_kept(
) -> None:
    result = pipedrive(("1", "D1", "2024-01-01 10:00", "stage_id", "", "2", "11"),
                       ("2", "D1", "2024-01-02 10:00", "status", "open", "lost", "11"),
                       ("3", "D1", "2024-01-02 10:01", "lost_reason", "", "Budget", "11"),
                       ("4", "D1", "2024-01-03 10:00", "status", "lost", "open", "11"),
                       ("5", "D1", "2024-01-04 10:00", "value", "", "0", "11"))
    assert story(result, "D1")[-1][2] == {"deal_id": "D1", "reason": "Budget"}
    assert [r.row for r in result.rejected] == [5, 6]
    assert all("after the deal was lost" in r.message for r in result.rejected)


def test_a_snapshot_row_is_imported_whole_or_not_at_all() -> None:
    mapping = parse_change_mapping({"format": "salesforce", "defaults": {
        "team_id": "t", "owner_id": "R1"}})
    header = ("Id", "OpportunityId", "CreatedDate", "StageName", "Amount", "CloseDate")
    result = convert_changes(table(header, [
        ("h1", "O1", "2024-01-01T10:00:00Z", "Prospecting", "100", "2024-02-01"),
        ("h2", "O1", "2024-01-05T10:00:00Z", "Closed Won", "120", "2024-01-05"),
        # The same (won) stage but a new amount after the win: the whole row is refused.
        ("h3", "O1", "2024-01-09T10:00:00Z", "Closed Won", "130", "2024-01-09"),
    ]), mapping)
    assert [(r.row, r.column) for r in result.rejected] == [(4, "Amount")]
    assert [t for t, _at, _d in story(result, "O1")] == [
        "deal.created", "deal.amount_changed", "deal.close_date_changed", "deal.won"]


def test_a_snapshot_that_changes_only_what_is_not_imported_is_skipped_saying_so() -> None:
    mapping = parse_change_mapping({"format": "salesforce", "defaults": {
        "team_id": "t", "owner_id": "R1"}})
    header = ("Id", "OpportunityId", "CreatedDate", "StageName", "Amount", "Probability")
    result = convert_changes(table(header, [
        ("h1", "O1", "2024-01-01T10:00:00Z", "Qualification", "100", "20"),
        ("h2", "O1", "2024-01-05T10:00:00Z", "Qualification", "100.00", "35"),
    ]), mapping)
    assert [t for t, _at, _d in story(result, "O1")] == ["deal.created"]
    assert [(s.row, s.message[:24]) for s in result.skipped] == [(3, "changes nothing imported")]


def test_owner_ids_map_to_reps_and_an_unmapped_one_is_rejected_with_its_row() -> None:
    result = pipedrive(("1", "D1", "2024-01-01 10:00", "user_id", "", "11", "11"),
                       ("2", "D1", "2024-01-02 10:00", "user_id", "11", "99", "11"),
                       values={"owner": {"11": "rep-ann"}}, defaults={"team_id": "t"})
    assert story(result, "D1")[0][2]["owner_id"] == "rep-ann"
    assert [(r.row, r.message) for r in result.rejected] == [
        (3, "owner '99' is not in [values.owner]")]


def test_a_deal_without_an_owner_anywhere_rejects_its_rows_saying_how_to_give_one() -> None:
    header = ("deal_id", "change_time", "field", "new_value")
    result = convert_changes(table(header, [("D1", "2024-01-01 10:00", "stage_id", "2"),
                                            ("D1", "2024-01-02 10:00", "stage_id", "3")]),
                             parse_change_mapping({"format": "pipedrive"}))
    assert not result.events
    assert [r.row for r in result.rejected] == [2, 3]
    assert "defaults.owner_id" in result.rejected[0].message


def test_without_a_team_for_the_reps_their_deals_rows_are_rejected_saying_how_to_fix_it(
) -> None:
    result = pipedrive(("1", "D1", "2024-01-01 10:00", "user_id", "", "11", "11"),
                       ("2", "D1", "2024-01-02 10:00", "stage_id", "1", "2", "11"),
                       defaults={})
    assert not result.events
    assert [r.row for r in result.rejected] == [2, 3]
    assert all("defaults.team_id" in r.message for r in result.rejected)


def test_a_negative_amount_is_rejected_naming_the_value_column() -> None:
    result = pipedrive(("1", "D1", "2024-01-01 10:00", "user_id", "", "11", "11"),
                       ("2", "D1", "2024-01-02 10:00", "value", "", "-5", "11"))
    assert [(r.row, r.column) for r in result.rejected] == [(3, "new_value")]
    assert "data.amount" in result.rejected[0].message


# --- delivery ---------------------------------------------------------------------

class ForeignDealApi:
    """All or nothing per batch; deals in `taken` already exist under other ids; answers
    `status` for every new event."""

    def __init__(self, taken: set[str], status: str = "accepted") -> None:
        self.taken, self.status = taken, status
        self.stored: dict[str, dict[str, Any]] = {}

    def send(self, batch: list[dict[str, Any]]) -> list[str]:
        refusals = [Refusal(i, "data.deal_id", f"deal {e['data']['deal_id']!r} already exists")
                    for i, e in enumerate(batch)
                    if e["type"] == "deal.created" and e["data"]["deal_id"] in self.taken]
        if refusals:
            raise BatchRefused(refusals)
        statuses = ["duplicate" if e["id"] in self.stored else self.status for e in batch]
        self.stored.update((e["id"], e) for e in batch)
        return statuses


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_changes_of_a_deal_the_api_refuses_to_create_are_rejected_never_sent(
        batch_size: int) -> None:
    log, _ = sample("pipedrive")
    mapping = shipped("pipedrive")
    result = convert_changes(log, mapping)
    api = ForeignDealApi(taken={"101"})
    delivery = deliver(result.events, api, mapping, batch_size=batch_size)
    rows_of_101 = {e.row for e in result.events if e.event["data"].get("deal_id") == "101"}
    assert {r.row for r in delivery.rejected} == rows_of_101
    assert not [e for e in api.stored.values() if e["data"].get("deal_id") == "101"]
    assert {e["data"].get("deal_id") for e in api.stored.values()} >= {"102", "103"}
    created = next(r for r in delivery.rejected if "already exists" in r.message)
    assert created.column == "deal_id"


def test_statuses_besides_accepted_and_duplicate_are_counted_for_the_summary() -> None:
    log, _ = sample("hubspot")
    mapping = shipped("hubspot")
    result = convert_changes(log, mapping)
    delivery = deliver(result.events, ForeignDealApi(set(), status="held"), mapping)
    assert delivery.others == Counter({"held": len(result.events)})
