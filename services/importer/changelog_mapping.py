"""The mapping file of a change-log export (`format = "salesforce" | "pipedrive" | "hubspot"`).

Each CRM's standard export names its columns, field keys and default pipeline stages; those
are the defaults here, so `format = "pipedrive"` alone reads a stock export. A mapping file
overrides single columns (`[columns]`) and field keys (`[fields]`), and replaces the stage
map (`[values.stage]`), the outcome values (`[outcomes]`) or the owner map
(`[values.owner]`) as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.importer.mapping import MappingError

# What a change can set. One instant's changes apply in this order: the close comes last,
# so an amount set in the same instant as a win is the won amount.
CHANGE_FIELDS = ("owner", "customer", "amount", "close_date", "stage", "status", "lost_reason")
# Column roles. `field`/`value`/`old_value` are those of a long log (one row per field);
# a snapshot log (Salesforce) has one column per changed field instead.
ROLES = ("deal_id", "changed_at", "sequence", "actor", "deleted", "field", "value", "old_value",
         "stage", "amount", "close_date")
DEAL_ROLES = ("deal_id", "owner", "customer", "stage", "is_won", "is_closed", "lost_reason")
STATUSES = ("open", "won", "lost", "deleted")


@dataclass(frozen=True)
class _Format:
    columns: dict[str, str]
    required: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict)  # CRM field key -> change field
    stages: dict[str, str] = field(default_factory=dict)
    won: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    deal_columns: dict[str, str] = field(default_factory=dict)  # a joined deals export


# Salesforce OpportunityHistory: one row per change of Amount, Probability, StageName or
# CloseDate, holding the opportunity's values after it (a snapshot). Owner and account are
# on the Opportunity object, which `--deals` joins. Standard sales-process stages.
SALESFORCE = _Format(
    columns={"deal_id": "OpportunityId", "changed_at": "CreatedDate", "sequence": "Id",
             "actor": "CreatedById", "deleted": "IsDeleted", "stage": "StageName",
             "amount": "Amount", "close_date": "CloseDate"},
    required=("deal_id", "changed_at", "stage"),
    stages={"Prospecting": "prospecting", "Qualification": "qualification",
            "Needs Analysis": "qualification", "Value Proposition": "proposal",
            "Id. Decision Makers": "proposal", "Perception Analysis": "proposal",
            "Proposal/Price Quote": "proposal", "Negotiation/Review": "negotiation"},
    won=("Closed Won",), lost=("Closed Lost",),
    deal_columns={"deal_id": "Id", "owner": "OwnerId", "customer": "AccountId",
                  "stage": "StageName", "is_won": "IsWon", "is_closed": "IsClosed"},
)
# Pipedrive's deal changelog (GET /v1/deals/{id}/changelog, or the flow's dealChange items)
# flattened to a row per change. Stage ids are per company (GET /v1/stages); these are the
# ids of the default pipeline of a new company.
PIPEDRIVE = _Format(
    columns={"deal_id": "deal_id", "changed_at": "change_time", "sequence": "id",
             "actor": "actor_user_id", "field": "field", "value": "new_value",
             "old_value": "old_value"},
    required=("deal_id", "changed_at", "field", "value"),
    fields={"stage_id": "stage", "value": "amount", "user_id": "owner", "org_id": "customer",
            "expected_close_date": "close_date", "status": "status",
            "lost_reason": "lost_reason"},
    stages={"1": "prospecting", "2": "qualification", "3": "qualification", "4": "proposal",
            "5": "negotiation"},
)
# HubSpot deal property history in long form (one row per version of a property), as the
# CRM API's `propertiesWithHistory` or a warehouse sync (e.g. Airbyte) lays it out.
HUBSPOT = _Format(
    columns={"deal_id": "dealId", "changed_at": "timestamp", "actor": "updatedByUserId",
             "field": "property", "value": "value"},
    required=("deal_id", "changed_at", "field", "value"),
    fields={"dealstage": "stage", "amount": "amount", "closedate": "close_date",
            "hubspot_owner_id": "owner", "closed_lost_reason": "lost_reason"},
    stages={"appointmentscheduled": "prospecting", "qualifiedtobuy": "qualification",
            "presentationscheduled": "proposal", "decisionmakerboughtin": "negotiation",
            "contractsent": "negotiation"},
    won=("closedwon",), lost=("closedlost",),
)
FORMATS = {"salesforce": SALESFORCE, "pipedrive": PIPEDRIVE, "hubspot": HUBSPOT}


@dataclass(frozen=True)
class ChangeMapping:
    """How to read one CRM's change log: columns by role, field keys, values."""

    format: str
    columns: dict[str, str]
    required: tuple[str, ...]
    explicit: frozenset[str]  # roles the file named itself: a missing column is an error
    fields: dict[str, str]
    stages: dict[str, str]
    won: tuple[str, ...]
    lost: tuple[str, ...]
    owners: dict[str, str]  # CRM owner id -> rep id; empty: the ids are the rep ids
    deal_columns: dict[str, str]
    date_formats: tuple[str, ...] = ()  # besides ISO 8601 and epoch milliseconds
    timezone: str = "UTC"  # of times without an offset; the CRMs' APIs export UTC
    team_id: str | None = None  # the team every imported rep joins
    owner_id: str | None = None  # the owner of a deal whose log names none
    created_stage: str | None = None  # of a deal whose first change already closes it
    decimal: str = "."
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    sheet: str | None = None

    @property
    def long(self) -> bool:
        """One row per field change (else one snapshot row per change of several fields)."""
        return "field" in self.required

    def column(self, role: str) -> str:
        """The file's column for a role (or the role itself, for messages)."""
        return self.columns.get(role, role)


def is_change_log(raw: dict[str, Any]) -> bool:
    return "format" in raw


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise MappingError(f"[{key}] must be a table")
    return value


def _strings(table: dict[str, Any], where: str) -> dict[str, str]:
    out = {}
    for key, value in table.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ids written as TOML integers
        if not isinstance(value, str):
            raise MappingError(f"{where}.{key} must be a string, not {value!r}")
        out[str(key)] = value
    return out


def _known(table: dict[str, str], allowed: tuple[str, ...], where: str) -> dict[str, str]:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise MappingError(f"{where}.{unknown[0]}: unknown; known: {', '.join(allowed)}")
    return table


def _list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise MappingError(f"{where} must be a list of strings")
    return tuple(str(v) for v in value)


def parse_change_mapping(raw: dict[str, Any]) -> ChangeMapping:
    """Check a parsed TOML document and build the mapping; raise `MappingError` naming the key."""
    name = raw.get("format")
    if name not in FORMATS:
        raise MappingError(f"format must be one of {', '.join(FORMATS)}, not {name!r}")
    base = FORMATS[name]
    own = _known(_strings(_table(raw, "columns"), "columns"), ROLES, "columns")
    fields = {**base.fields, **_strings(_table(raw, "fields"), "fields")}
    for key, target in fields.items():
        if target not in CHANGE_FIELDS and target != "ignore":
            raise MappingError(f"fields.{key}: {target!r} is not one of "
                               f"{', '.join(CHANGE_FIELDS)} or \"ignore\"")
    values = _table(raw, "values")
    for key in values:
        if key not in ("stage", "owner"):
            raise MappingError(f"values.{key}: only values.stage and values.owner are mapped")
    stages = (_strings(_table(values, "stage"), "values.stage") if "stage" in values
              else base.stages)
    outcomes = _table(raw, "outcomes")
    won = _list(outcomes["won"], "outcomes.won") if "won" in outcomes else base.won
    lost = _list(outcomes["lost"], "outcomes.lost") if "lost" in outcomes else base.lost
    clash = sorted(set(stages) & set(won + lost))
    if clash:
        raise MappingError(f"values.stage.{clash[0]}: also an outcome in [outcomes]")
    for key, stage in stages.items():
        if stage in ("won", "lost"):
            raise MappingError(f"values.stage.{key}: won and lost are outcomes; "
                               "list the value in [outcomes] instead")
    dates = _table(raw, "dates")
    timezone = dates.get("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise MappingError(f"dates.timezone: unknown time zone {timezone!r}") from None
    defaults = _known(_strings(_table(raw, "defaults"), "defaults"),
                      ("team_id", "owner_id", "created_stage"), "defaults")
    amounts = _table(raw, "amounts")
    decimal = amounts.get("decimal", ".")
    if decimal not in (".", ","):
        raise MappingError('amounts.decimal must be "." or ","')
    source = _table(raw, "file")
    deal_columns = {**base.deal_columns, **_known(
        _strings(_table(raw, "deal_columns"), "deal_columns"), DEAL_ROLES, "deal_columns")}
    return ChangeMapping(
        format=name, columns={**base.columns, **own}, required=base.required,
        explicit=frozenset(own), fields=fields, stages=stages, won=won, lost=lost,
        owners=_strings(_table(values, "owner"), "values.owner"),
        deal_columns=deal_columns,
        date_formats=_list(dates.get("formats", []), "dates.formats"),
        timezone=timezone, team_id=defaults.get("team_id"), owner_id=defaults.get("owner_id"),
        created_stage=defaults.get("created_stage"), decimal=decimal,
        delimiter=str(source.get("delimiter", ",")),
        encoding=str(source.get("encoding", "utf-8-sig")), sheet=source.get("sheet"))
