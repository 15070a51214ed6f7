"""Settings: every contract variable, comma lists, URL rewriting, and plain error messages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings, usd_to_ticks

CONTRACT_VARIABLES = {
    "XAI_API_KEY", "XAI_BASE_URL", "GROKBOT_MODEL", "GROKBOT_REASONING_MODEL", "GROKBOT_IMAGE_MODEL",
    "DATABASE_URL", "DISCORD_TOKEN", "DISCORD_API_BASE_URL", "DISCORD_GATEWAY_URL", "DISCORD_GUILD_IDS",
    "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "PORT",
    "GROKBOT_USER_DAILY_USD", "GROKBOT_USER_MONTHLY_USD", "GROKBOT_USER_DAILY_IMAGES",
    "GROKBOT_WORKSPACE_MONTHLY_USD", "GROKBOT_ADMINS", "GROKBOT_TIMEZONE", "GROKBOT_EDIT_INTERVAL_S",
    "GROKBOT_XAI_API",
}  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CONTRACT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_every_contract_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert fields >= CONTRACT_VARIABLES


def test_defaults_match_the_contract() -> None:
    settings = load_settings()
    assert settings.xai_base_url == "https://api.x.ai/v1"
    assert settings.database_url == "sqlite+aiosqlite:///grokbot.db"
    assert settings.port == 3000
    assert settings.grokbot_user_daily_usd == Decimal("1.00")
    assert settings.grokbot_user_monthly_usd == Decimal("10.00")
    assert settings.grokbot_user_daily_images == 10
    assert settings.grokbot_workspace_monthly_usd == 0
    assert settings.grokbot_timezone == "UTC"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.discord_gateway_url == "wss://gateway.discord.gg/"


def test_reads_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("XAI_API_KEY=xai-from-dotenv\nGROKBOT_ADMINS=discord:1, slack:U2\n")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "123,456")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/grokbot")
    settings = load_settings()
    assert settings.xai_api_key is not None
    assert settings.xai_api_key.get_secret_value() == "xai-from-dotenv"
    assert settings.grokbot_admins == ("discord:1", "slack:U2")
    assert settings.discord_guild_ids == ("123", "456")
    assert settings.database_url == "postgresql+asyncpg://u:p@db/grokbot"
    assert settings.is_admin("slack", "U2") and not settings.is_admin("slack", "U3")


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-supersecret")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-supersecret")
    settings = load_settings()
    assert "supersecret" not in repr(settings)
    assert "supersecret" not in str(settings.model_dump())


def test_slack_url_gets_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    assert load_settings().slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GROKBOT_USER_DAILY_USD", "lots", "GROKBOT_USER_DAILY_USD"),
        ("GROKBOT_USER_DAILY_USD", "-1", "non-negative amount of US dollars"),
        ("GROKBOT_TIMEZONE", "Mars/Olympus", "IANA time zone"),
        ("PORT", "70000", "TCP port"),
        ("DISCORD_GUILD_IDS", "12,abc", "numeric guild ids"),
        ("GROKBOT_ADMINS", "bob", "platform:user_id"),
        ("DATABASE_URL", "mysql://x", "sqlite+aiosqlite"),
        ("DISCORD_GATEWAY_URL", "http://x", "ws(s) URL"),
        ("GROKBOT_EDIT_INTERVAL_S", "0.01", "between 0.2 and 10"),
    ],
)
def test_invalid_values_name_the_variable_and_what_is_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert expected in message
    assert "Traceback" not in message


def test_usd_to_ticks() -> None:
    assert usd_to_ticks(Decimal("1.00")) == 10_000_000_000
    assert usd_to_ticks(Decimal("0.0000000001")) == 1


def test_interactive_answers_use_the_responses_api_unless_told_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().grokbot_xai_api == "responses"
    monkeypatch.setenv("GROKBOT_XAI_API", "chat")
    assert load_settings().grokbot_xai_api == "chat"
    monkeypatch.setenv("GROKBOT_XAI_API", "grpc")
    with pytest.raises(SettingsError, match=r"GROKBOT_XAI_API.*responses .*or chat"):
        load_settings()
