"""Channel secrets are sealed with a key kept apart from the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.alerter.secrets import Sealer, SecretUnreadable
from services.settings import Settings


def test_a_sealed_secret_opens_with_the_same_key_only() -> None:
    sealer = Sealer(Settings(alert_secrets_key="one"))
    token = sealer.seal("SEC-robot-secret")
    assert "SEC-robot-secret" not in token
    assert sealer.unseal(token) == "SEC-robot-secret"
    with pytest.raises(SecretUnreadable):
        Sealer(Settings(alert_secrets_key="two")).unseal(token)


def test_without_a_configured_key_one_is_made_once_in_the_data_directory(
        tmp_path: Path) -> None:
    token = Sealer(Settings(data_dir=tmp_path)).seal("s")
    assert (tmp_path / "alert-secrets.key").stat().st_mode & 0o777 == 0o600
    assert Sealer(Settings(data_dir=tmp_path)).unseal(token) == "s"
