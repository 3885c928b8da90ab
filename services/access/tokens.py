"""Signed tokens (JWT) from an identity provider: HS256 with a shared secret or RS256 with
the provider's public key, as configured. Claims: `sub`, `tenant`, `role`, and `rep_id`
(role rep) or `team_id` (role manager); `exp` is required."""

from __future__ import annotations

from dataclasses import dataclass

from services.access.principal import Principal


class BadToken(Exception):
    pass


class ExpiredToken(BadToken):
    """Well signed, but past its `exp`."""


@dataclass(frozen=True)
class TokenVerifier:
    algorithm: str  # HS256 or RS256
    key: str  # the shared secret, or the PEM public key
    audience: str | None = None
    issuer: str | None = None

    def principal(self, token: str) -> Principal:
        # Imported on first use: only deployments with an identity provider need it, and
        # with its cryptography bindings it cost every API process ~9 MB at start.
        import jwt

        try:
            claims = jwt.decode(token, self.key, algorithms=[self.algorithm],
                                audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "sub", "tenant", "role"]})
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredToken(str(exc)) from None
        except jwt.PyJWTError as exc:
            raise BadToken(str(exc)) from None
        try:
            return Principal(str(claims["tenant"]), claims["role"], f"jwt:{claims['sub']}",
                             claims.get("rep_id"), claims.get("team_id"))
        except ValueError as exc:
            raise BadToken(str(exc)) from None
