"""The caller behind a request and the slice of the tenant its role may read. Pure.

Roles: `ingest` writes events; `rep` reads their own figures; `manager` reads their team;
`admin` reads the whole tenant and configures it. A scoped role's filters are narrowed to
its scope, and a filter that asks outside it is refused (403), never silently emptied, so
a caller learns at once that they asked for something they may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal, get_args

from projections.snapshot import Filters

Role = Literal["ingest", "rep", "manager", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
READERS: frozenset[Role] = frozenset({"rep", "manager", "admin"})
WRITERS: frozenset[Role] = frozenset({"ingest", "admin"})
ADMINS: frozenset[Role] = frozenset({"admin"})


class Forbidden(Exception):
    """The credential is valid but may not do or see this."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: Role
    subject: str  # the key id, or a token's `sub`: what rate limits and logs name
    rep_id: str | None = None  # whose figures a `rep` reads
    team_id: str | None = None  # whose team a `manager` reads
    rate_limit: str | None = None  # overrides the service's default (`limits` syntax)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if self.role == "rep" and not self.rep_id:
            raise ValueError("a rep credential names its rep_id")
        if self.role == "manager" and not self.team_id:
            raise ValueError("a manager credential names its team_id")

    def require(self, roles: frozenset[Role], action: str) -> None:
        if self.role not in roles:
            raise Forbidden(None, f"the {self.role} role may not {action}")

    def scope(self, filters: Filters, team_members: Iterable[str] = ()) -> Filters:
        """`filters` narrowed to what this role may read. `team_members`: the reps now in
        the manager's team (a manager may name one of them as `rep`)."""
        dims = dict(filters.dims)
        if self.role == "rep":
            self._same("rep", dims.get("rep"), self.rep_id)
            dims["rep"] = self.rep_id  # type: ignore[assignment]
        elif self.role == "manager":
            self._same("team", dims.get("team"), self.team_id)
            if dims.get("rep") is not None and dims["rep"] not in set(team_members):
                raise Forbidden("rep", f"rep {dims['rep']!r} is not in your team")
            dims["team"] = self.team_id  # type: ignore[assignment]
        elif self.role == "ingest":
            raise Forbidden(None, "the ingest role writes events and reads no figures")
        return replace(filters, dims=dims)

    def may_read_rep(self, rep_id: str, team: str | None = None) -> bool:
        """A rep's page, describing them in `team` (their team at the moment it is for)."""
        if self.role == "admin":
            return True
        if self.role == "rep":
            return rep_id == self.rep_id
        if self.role == "manager":
            return team is not None and team == self.team_id
        return False

    def may_read_owner(self, owner: str | None, team: str | None) -> bool:
        """An alert or list row about `owner`'s subject, in `team` at the time."""
        if self.role == "admin":
            return True
        if self.role == "rep":
            return owner is not None and owner == self.rep_id
        if self.role == "manager":
            return team is not None and team == self.team_id
        return False

    def _same(self, field: str, asked: str | None, own: str | None) -> None:
        if asked is not None and asked != own:
            raise Forbidden(field, f"this credential reads {field} {own!r} only")
