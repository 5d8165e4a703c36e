"""Settings: local secrets are generated once and kept; production refuses placeholders."""

from __future__ import annotations

import stat

import pytest

from dcp.config import ConfigError, load_settings


def test_local_secrets_are_generated_once_and_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCP_DATA_DIR", str(tmp_path))
    first = load_settings()
    printed = capsys.readouterr().out
    assert first.admin_token in printed
    second = load_settings()
    assert capsys.readouterr().out == ""
    assert (first.secret_key, first.admin_token) == (second.secret_key, second.admin_token)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert first.database_url == f"sqlite+aiosqlite:///{tmp_path / 'dcp.db'}"


@pytest.mark.parametrize(
    ("secret", "token"),
    [("", ""), ("change-me", "x" * 40), ("x" * 40, "admin"), ("short", "y" * 40)],
)
def test_production_refuses_missing_or_placeholder_secrets(monkeypatch, tmp_path, secret, token):
    monkeypatch.setenv("DCP_ENV", "production")
    monkeypatch.setenv("DCP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DCP_SECRET_KEY", secret)
    monkeypatch.setenv("DCP_ADMIN_TOKEN", token)
    with pytest.raises(ConfigError, match="refusing to start in production"):
        load_settings()
    assert not (tmp_path / "secrets.json").exists()


def test_production_with_real_secrets(monkeypatch):
    monkeypatch.setenv("DCP_ENV", "production")
    monkeypatch.setenv("DCP_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("DCP_ADMIN_TOKEN", "t" * 48)
    monkeypatch.setenv("DCP_PRICING__LLM_INFERENCE", "17")
    settings = load_settings()
    assert settings.pricing.llm_inference == 17
