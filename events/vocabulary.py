"""The sales domain's words, declared once: the `Literal`s, defaults and checks of the
contract, the views, the alert rules, the API and the client are built from these."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

# A tenant's zone unless configured (TENANT_TIMEZONE): naive times are read in it, and its
# calendar cuts days, weeks, months and quarters.
DEFAULT_TIMEZONE = "Asia/Shanghai"

# The open stages of a pipeline until the tenant defines its own (`pipeline.defined`).
DEFAULT_STAGES: tuple[str, ...] = ("prospecting", "qualification", "proposal", "negotiation")

# The kind of the subjects that keep events waiting for a subject not known yet (the ledger
# holds them; the read side lists them): not a figure, never in a view.
HELD = "held"

TargetMetric = Literal["won_value", "won_deals", "new_leads", "activities", "collected"]
TARGET_METRICS: tuple[TargetMetric, ...] = get_args(TargetMetric)

# What a deal, lead or activity can be filtered and grouped by.
Dimension = Literal["rep", "team", "manager", "region", "source", "product", "segment"]
DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)
BreakdownPeriod = Literal["month", "quarter"]  # the calendar groupings of GET /v1/breakdown
PERIODS: tuple[BreakdownPeriod, ...] = get_args(BreakdownPeriod)
Grouping = Literal[Dimension, BreakdownPeriod]  # GET /v1/breakdown?by=
GROUPINGS: tuple[Grouping, ...] = DIMENSIONS + PERIODS


def ts(value: str) -> datetime:
    """A timestamp as the contract writes it (ISO 8601, always with its offset)."""
    return datetime.fromisoformat(value)
