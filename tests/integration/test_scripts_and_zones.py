"""Text in any script, emoji, long ids, odd offsets and daylight-saving changes: stored,
projected and returned exactly as sent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Stack, _projected, wait_until

pytestmark = pytest.mark.integration

REP = "销售-代表-" + "x" * 122  # 128 characters: the longest id the contract allows
TEAM = "华东大区 🚀"
REGION = "Île-de-France / Москва / القاهرة"
PRODUCT = "CRM 套件 ✨ — “Pro”"
REASON = "价格太高 😢 (price)"


def ev(id_: str, type_: str, at: str, **data: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "occurred_at": at, "data": data}


def test_any_script_any_offset_comes_back_intact(stack: Stack) -> None:
    assert len(REP) == 128
    events = [
        ev("e1", "rep.joined", "2017-03-01T09:00:00+05:45", rep_id=REP, name="王小明 🧑‍💼",
           team_id=TEAM, region=REGION),
        # New York's clocks jump from 02:00 to 03:00 on 2017-03-12: offsets across the change.
        ev("e2", "deal.created", "2017-03-11T23:30:00-05:00", deal_id="D-😀", owner_id=REP,
           amount="12345.67", product=PRODUCT, source="微信"),
        ev("e3", "deal.stage_changed", "2017-03-12T03:30:00-04:00", deal_id="D-😀",
           stage="qualification"),
        ev("e4", "deal.lost", "2017-03-31T20:00:00-03:30", deal_id="D-😀", reason=REASON,
           competitor="竞品 β"),
    ]
    assert stack.post(events).accepted == len(events)

    with stack.client() as client:
        def breakdown(by: str) -> list[dict[str, Any]]:
            answer = client.get("/v1/breakdown", params={"by": by})
            return answer.json()["rows"] if answer.status_code == 200 else []

        # The rep and the deal are keyed to different partitions: a deal folded before its
        # rep's record would show no team yet, so wait for every event, not the first row.
        wait_until(lambda: _projected(stack, len(events)), message="every event projected")
        rows = breakdown("team")
        assert [r["key"] for r in rows] == [TEAM] and rows[0]["lost"] == 1
        assert [r["key"] for r in breakdown("rep")] == [REP]
        assert [r["key"] for r in breakdown("region")] == [REGION]
        assert [r["key"] for r in breakdown("product")] == [PRODUCT]
        assert [r["key"] for r in breakdown("source")] == ["微信"]

        funnel = client.get("/v1/funnel", params={"team": TEAM, "region": REGION}).json()
        assert funnel["loss_reasons"] == {REASON: 1}
        assert funnel["competitors"] == {"竞品 β": 1}
        prospecting = funnel["stages"][0]
        # 23:30 -05:00 to 03:30 -04:00 across the jump is 3 hours of real time, not 4.
        assert prospecting["dwell_days_median"] == pytest.approx(3 / 24, abs=1e-12)

        rep = client.get(f"/v1/reps/{REP}")
        assert rep.status_code == 200, rep.text
        assert "王小明 🧑‍💼" in rep.text
        # Months are the tenant's (Asia/Shanghai): a loss on 31 March at 20:00 -03:30 is
        # 1 April 07:30 there.
        assert [r["key"] for r in breakdown("month")] == ["2017-04"]
