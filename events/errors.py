"""Why an event is refused: always naming the field at fault."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class Refused(Exception):
    """An event that breaks the contract or its aggregate's rules; nothing of it is stored."""

    def __init__(self, field: str, message: str, *, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.errors = [FieldError(field, message)]
        self.status = status


class Unknown(Refused):
    """An event naming a subject not known yet: held until it arrives, or refused on request."""

    def __init__(self, field: str, kind: str, key: str) -> None:
        super().__init__(field, f"unknown {kind} {key!r}")
        self.kind, self.key = kind, key


class InvalidEvent(Refused):
    def __init__(self, errors: list[FieldError]) -> None:
        Exception.__init__(self, "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors
        self.status = 422
