"""An answer's JSON made once (`route_json`) is, byte for byte, what FastAPI sends when a
route returns the answer as `dict[str, Any]`: for every view's answer, and for the values
whose spelling JSON encoders disagree on (exponents, non-ASCII, nesting)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from projections.columnar import Columns
from services.api.route_json import route_json
from tests.history import TZ
from tests.unit.test_shared_answers import columns, views

ODD_VALUES: dict[str, Any] = {
    "tiny": 1e-7, "huge": 1e16, "negative": -0.0, "third": 1 / 3, "big_int": 2**63 - 1,
    "text": "销售 “quoted” \\ \n\t\u2028", "none": None, "empty": {}, "flags": [True, False],
    "rows": [{"share": 0.1, "nested": [[1.5e-5, 123456789.125]]}],
}


def sent_by_fastapi(answer: dict[str, Any]) -> bytes:
    app = FastAPI()

    @app.get("/answer")
    async def route() -> dict[str, Any]:
        return answer

    with TestClient(app) as client:
        response = client.get("/answer")
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("view", [name for name in views(Columns(TZ)) if name != "unknown rep"])
def test_every_views_json_is_what_fastapi_sends(view: str) -> None:
    answer = views(columns())[view]()
    assert route_json(answer) == sent_by_fastapi(answer)


def test_values_encoders_spell_differently_come_out_as_fastapi_spells_them() -> None:
    assert route_json(ODD_VALUES) == sent_by_fastapi(ODD_VALUES)
