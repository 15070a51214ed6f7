"""The one typed Settings object: every variable of the contract, read from the environment and `.env`.

Nothing else in grokbot reads the environment; `__main__` builds Settings once and passes it down.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TICKS_PER_USD = 10_000_000_000

CommaList = Annotated[tuple[str, ...], NoDecode]

# What each variable accepts, said to the operator when a value is rejected.
ACCEPTED: dict[str, str] = {
    "xai_base_url": "an http(s) URL such as https://api.x.ai/v1",
    "database_url": (
        "a SQLAlchemy async URL: sqlite+aiosqlite:///grokbot.db or postgresql+asyncpg://user@host/db"
    ),
    "discord_api_base_url": "an http(s) URL such as https://discord.com/api/v10",
    "discord_gateway_url": "a ws(s) URL such as wss://gateway.discord.gg/",
    "discord_guild_ids": "a comma list of numeric guild ids, e.g. 123456789012345678,987654321",
    "slack_api_url": "an http(s) URL ending in a slash, such as https://slack.com/api/",
    "port": "a TCP port number from 1 to 65535",
    "grokbot_user_daily_usd": "a non-negative amount of US dollars, e.g. 1.00 (0 = unlimited)",
    "grokbot_user_monthly_usd": "a non-negative amount of US dollars, e.g. 10.00 (0 = unlimited)",
    "grokbot_user_daily_images": "a whole number of images, 0 or more (0 = unlimited)",
    "grokbot_workspace_monthly_usd": "a non-negative amount of US dollars (0 = unlimited)",
    "grokbot_admins": "a comma list of platform:user_id, e.g. discord:1234,slack:U0123",
    "grokbot_timezone": "an IANA time zone name such as UTC or Europe/Berlin",
    "grokbot_edit_interval_s": "a number of seconds between 0.2 and 10",
    "grokbot_digest_min_interval_s": "a whole number of seconds, 60 or more (3600 = hourly)",
    "grokbot_shutdown_grace_s": (
        "a number of seconds from 0 to 600, below the time your platform waits before it kills "
        "a stopping process (30 s on most)"
    ),
    "grokbot_allowed_guilds": "a comma list of numeric Discord guild ids",
    "grokbot_allowed_channels": "a comma list of channel ids",
    "grokbot_allowed_roles": "a comma list of Discord role ids",
    "grokbot_public_url": "the http(s) URL where people reach this server, e.g. https://grokbot.example.com",
    "grokbot_log_format": "text or json (one JSON object a line, for log collectors)",
    "grokbot_xai_api": "responses (search tools, reasoning summaries) or chat (Chat Completions)",
}


class Settings(BaseSettings):
    """Configuration of one grokbot process. Field names are the environment variable names."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    xai_api_key: SecretStr | None = None
    xai_base_url: str = "https://api.x.ai/v1"
    grokbot_model: str = "grok-4.3"
    grokbot_reasoning_model: str = "grok-4.3"  # takes reasoning effort; streams a reasoning summary
    grokbot_image_model: str = "grok-imagine-image"

    database_url: str = "sqlite+aiosqlite:///grokbot.db"

    discord_token: SecretStr | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_guild_ids: CommaList = ()

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    port: int = Field(default=3000, ge=1, le=65535)

    grokbot_user_daily_usd: Decimal = Field(default=Decimal("1.00"), ge=0)
    grokbot_user_monthly_usd: Decimal = Field(default=Decimal("10.00"), ge=0)
    grokbot_user_daily_images: int = Field(default=10, ge=0)
    grokbot_workspace_monthly_usd: Decimal = Field(default=Decimal("0"), ge=0)
    grokbot_admins: CommaList = ()
    grokbot_timezone: str = "UTC"
    grokbot_edit_interval_s: float | None = Field(default=None, ge=0.2, le=10)
    # The least time between two runs of one digest schedule that users may set.
    grokbot_digest_min_interval_s: int = Field(default=3600, ge=60)
    # On SIGTERM: how long answers in flight may go on before they are closed with a note.
    grokbot_shutdown_grace_s: float = Field(default=20, ge=0, le=600)
    # Which xAI API interactive answers use; deferred answers always use Chat Completions.
    grokbot_xai_api: Literal["responses", "chat"] = "responses"

    grokbot_allowed_guilds: CommaList = ()
    grokbot_allowed_channels: CommaList = ()
    grokbot_allowed_roles: CommaList = ()

    # Where people reach the HTTP server (the admin pages' sign-in links); unset: no links.
    grokbot_public_url: str | None = None
    grokbot_log_format: Literal["text", "json"] = "text"

    @field_validator(
        "discord_guild_ids",
        "grokbot_admins",
        "grokbot_allowed_guilds",
        "grokbot_allowed_channels",
        "grokbot_allowed_roles",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("discord_guild_ids", "grokbot_allowed_guilds")
    @classmethod
    def _numeric_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not item.isdigit():
                raise ValueError(f"{item!r} is not a numeric id")
        return value

    @field_validator("grokbot_admins")
    @classmethod
    def _admin_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            platform, _, user = item.partition(":")
            if platform not in {"discord", "slack", "console"} or not user:
                raise ValueError(f"{item!r} is not platform:user_id")
        return value

    @field_validator("grokbot_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("xai_base_url", "discord_api_base_url", "slack_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("grokbot_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme, sep, rest = value.strip().partition("://")
        host = rest.split("/", 1)[0]
        if scheme not in {"http", "https"} or not sep or not host or any(c in host for c in "@ "):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.strip().rstrip("/")

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack-sdk joins method names with urljoin: without the slash the last segment is lost.
        return value if value.endswith("/") else value + "/"

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(f"{value!r} is not a ws(s) URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_url(cls, value: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                # Heroku-style URLs name no driver; grokbot talks to PostgreSQL through asyncpg.
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(f"unsupported database URL scheme in {value.split(':', 1)[0]!r}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.grokbot_timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def is_admin(self, platform: str, user_id: str) -> bool:
        return f"{platform}:{user_id}" in self.grokbot_admins


def usd_to_ticks(amount: Decimal) -> int:
    """Whole ticks for a dollar amount (1 USD = 10^10 ticks)."""
    return int(amount * TICKS_PER_USD)


class SettingsError(Exception):
    """The configuration was rejected; `str()` names each variable and what it accepts."""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment and `.env`, or raise SettingsError with a plain message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_invalid(exc)) from None


def describe_invalid(exc: ValidationError) -> str:
    lines = ["grokbot cannot start: the configuration is invalid."]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        reason = error["msg"].removeprefix("Value error, ")
        accepted = ACCEPTED.get(field)
        line = f"  {field.upper()}: {reason}"
        if accepted:
            line += f"; expected {accepted}"
        lines.append(line)
    return "\n".join(lines)
