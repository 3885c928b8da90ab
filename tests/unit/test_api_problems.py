"""The OpenAPI document declares the error answers the API gives: problem bodies
(application/problem+json), for every status an operation can answer with.

Found by the schemathesis fuzz (tests/integration/test_api_fuzz.py); pinned here without
services, from the app's own document.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.problems import PROBLEM_MEDIA_TYPE


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in document["paths"].items()
            for method, op in ops.items()]


def test_every_documented_error_is_a_problem_body(document: dict[str, Any]) -> None:
    for label, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) >= 400 and label != "GET /healthz":
                assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (label, status)
                schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
                assert set(schema["required"]) == {"type", "title", "status", "detail"}


def test_invalid_parameters_are_documented_as_problems_not_fastapis_default(
        document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
    for label, op in operations(document):
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], label


def test_operations_reading_a_json_body_document_400_for_one_that_is_not_json(
        document: dict[str, Any]) -> None:
    for label, op in operations(document):
        if "requestBody" in op:
            assert "400" in op["responses"], label


def test_reads_document_503_while_the_read_models_are_rebuilt(document: dict[str, Any]) -> None:
    for path in ("/v1/funnel", "/v1/breakdown", "/v1/forecast", "/v1/leads", "/v1/revenue",
                 "/v1/leaderboard", "/v1/dimensions", "/v1/deals/stalled"):
        assert "503" in document["paths"][path]["get"]["responses"], path


def test_an_http_error_raised_anywhere_answers_a_problem() -> None:
    response = TestClient(create_app()).get("/dashboard/no-such-asset.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == 404 and body["title"] == "Not Found"
    assert "no-such-asset.js" in body["detail"]
