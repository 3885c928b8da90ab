"""RFC 9457 problem bodies: every error says what, why, and which event and field."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

PROBLEM_BASE = "https://salespulse.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """Why a request was not served; `errors` names each bad event (index) and field."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem(status: int, slug: str, title: str, detail: str,
            errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status,
                            "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring problem bodies for these statuses."""
    schema = Problem.model_json_schema()
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}
            for status in statuses}


# Reads answer 503 while the read models are rebuilt from the log (see app.py).
READ_PROBLEMS = problem_responses(503)
