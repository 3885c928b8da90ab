"""GET /v1/leads keeps a whole-tenant selection (its groups, decisions and days to a deal)
between questions: a question at another `as_of` reuses it, and any change of the data
makes it anew, so the answers stay the `Snapshot`'s as records arrive one by one."""

from __future__ import annotations

from datetime import datetime

from projections import columnar_leads, leads
from projections.snapshot import Filters, Snapshot
from tests.history import TZ, changes, one_change_at_a_time, simulated
from tests.unit.test_column_store_views import body

MOMENTS = ("2017-02-10T09:30:00+08:00", "2017-03-01T00:00:00Z", "2017-04-30T18:00:00+08:00")


def test_a_kept_selection_follows_every_change() -> None:
    asked = 0
    stream = changes(simulated(days=90))
    for _, records, columns in one_change_at_a_time(stream, [5, 3, 2]):
        snapshot = Snapshot(records, TZ)
        for by in ("month", "source"):  # both kept (`_KEPT_SELECTIONS`)
            for text in MOMENTS:  # the same selection at several moments: kept, then reused
                as_of = datetime.fromisoformat(text)
                assert body(columnar_leads.leads(columns, Filters(), by, as_of)) == \
                    body(leads.leads(snapshot, Filters(), by, as_of)), (by, as_of)
                asked += 1
    assert asked == 4 * 2 * len(MOMENTS)
