"""The API's routers are included hot ones first (`services/api/app.py`). That changes only
the order FastAPI tries them in: no request path matches routes of two routers (within one
router, the routes keep their order)."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from services.api.app import create_app


def _by_router() -> list[list[APIRoute]]:
    groups: list[list[APIRoute]] = []
    for route in create_app().router.routes:
        if isinstance(route, APIRoute):
            groups.append([route])
        elif hasattr(route, "original_router"):  # an included router, kept whole
            groups.append([r for r in route.original_router.routes if isinstance(r, APIRoute)])
    return groups


def test_no_request_path_matches_routes_of_two_routers() -> None:
    groups = _by_router()
    assert {"/v1/funnel", "/v1/events/batch", "/v1/settings/display"} <= {
        r.path for group in groups for r in group}
    for index, group in enumerate(groups):
        others = [r for other in groups[:index] + groups[index + 1:] for r in other]
        for route in group:
            path = re.sub(r"\{[^}]+\}", "x", route.path)  # a request: each parameter filled in
            matched = [o.path for o in others
                       if o.methods & route.methods and o.path_regex.match(path)]
            assert matched == [], f"{sorted(route.methods)} {path} also matches {matched}"
