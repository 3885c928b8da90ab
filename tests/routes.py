"""Every projection the API serves, enumerated from its OpenAPI document, and the check that
several APIs answer each of them byte for byte alike: what rebuild, arrival-order, restore
and scale-out tests compare."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

AS_OF = "2017-12-31T18:00:00+08:00"
# Not projections of the log: the alerter's own state, and static documents.
NOT_PROJECTIONS = ("/v1/alerts", "/v1/deals/stalled", "/v1/customers/at-risk", "/v1/schemas",
                   "/v1/asyncapi.json", "/v1/me", "/v1/keys")


def projection_requests(openapi: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(path, params) for every GET without path parameters, once per combination of its
    enumerated query parameters (`by`, `period`, …), measured at a fixed `as_of`."""
    requests = []
    for path, methods in sorted(openapi["paths"].items()):
        get = methods.get("get")
        if get is None or "{" in path or not path.startswith("/v1/") \
                or path.startswith(NOT_PROJECTIONS):
            continue
        choices: dict[str, list[str]] = {}
        for parameter in get.get("parameters", ()):
            schema = parameter.get("schema", {})
            options = schema.get("enum") or next(
                (s["enum"] for s in schema.get("anyOf", ()) if "enum" in s), None)
            if parameter["in"] == "query" and options:
                choices[parameter["name"]] = [str(o) for o in options]
            if parameter["name"] == "as_of":
                choices["as_of"] = [AS_OF]
        for combination in itertools.product(*choices.values()):
            requests.append((path, dict(zip(choices, combination, strict=True))))
    return requests


def assert_same_answers(reference: httpx.Client, *others: httpx.Client) -> int:
    """Ask `reference` and each of `others` every projection request; each answer is 200 from
    the reference and byte for byte the same from the others. Returns the count of
    requests."""
    requests = projection_requests(reference.get("/openapi.json").json())
    assert any(path == "/v1/funnel" for path, _ in requests)
    for path, params in requests:
        expected = reference.get(path, params=params)
        assert expected.status_code == 200, (path, params, expected.text)
        for other in others:
            got = other.get(path, params=params)
            assert got.content == expected.content, (str(other.base_url), path, params,
                                                     got.text[:400])
    return len(requests)
