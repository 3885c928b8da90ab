"""The machine-readable contract: AsyncAPI for the Kafka topics (OpenAPI is at /openapi.json)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import ServicesDep
from services.asyncapi import document

router = APIRouter(prefix="/v1", tags=["schemas"])


@router.get("/asyncapi.json")
async def asyncapi(services: ServicesDep) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the events, dead-letter and alerts topics."""
    return document(services.settings)
