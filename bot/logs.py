"""How grokbot's log records are written: plain text or one JSON object a line, secrets masked,
and the libraries' routine chatter (per-poll, per-request, per-command INFO lines) kept out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from pydantic import SecretStr
from sqlalchemy import make_url

from bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries that log routine work at INFO: the scheduler twice a poll (every 2 s), alembic a line
# per plugin on every command, httpx a line per request to xAI. Their warnings still show.
QUIET_LOGGERS = ("apscheduler", "alembic", "httpx", "httpcore")

# Warnings that a correct configuration cannot avoid, as (logger, start of the message): grokbot
# gives slack-bolt a ready client (the token is in it), and never uses Discord's voice support.
UNAVOIDABLE = (
    ("slack_bolt", "As you gave `client` as well, `token` will be unused"),
    ("discord.client", "PyNaCl is not installed, voice will NOT be supported"),
    ("discord.client", "davey is not installed, voice will NOT be supported"),
)
MASK = "***"


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every secret value in the configuration: tokens, keys and the database password."""
    fields = (getattr(settings, name) for name in type(settings).model_fields)
    values = [value.get_secret_value() for value in fields if isinstance(value, SecretStr)]
    values.append(make_url(settings.database_url).password or "")
    return tuple(sorted({v for v in values if len(v) >= 4}, key=len, reverse=True))


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class TextFormatter(logging.Formatter):
    """The classic one-line format, with secrets masked (in tracebacks too)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record), self.secrets)


# A record's own attributes; any other one came through `extra=` and becomes a JSON key.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line for log collectors: timestamp, level, logger, message, exception, and
    the fields a record was given with `extra=` (an answer's place, model, tokens, cost, latency)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage(), self.secrets),
        }
        for key, value in vars(record).items():
            if key not in RECORD_ATTRIBUTES and key not in entry:
                entry[key] = mask(value, self.secrets) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info), self.secrets)
        if record.stack_info:
            entry["stack"] = mask(self.formatStack(record.stack_info), self.secrets)
        return json.dumps(entry, ensure_ascii=False, default=str)


def drop_unavoidable(record: logging.LogRecord) -> bool:
    """A handler filter: False for the library warnings listed in UNAVOIDABLE."""
    if record.levelno > logging.WARNING:
        return True
    message = str(record.msg)
    return not any(record.name == name and message.startswith(text) for name, text in UNAVOIDABLE)


def formatter_for(settings: Settings | None) -> logging.Formatter:
    if settings is None:
        return TextFormatter()
    if settings.grokbot_log_format == "json":
        return JsonFormatter(secrets_of(settings))
    return TextFormatter(secrets_of(settings))


def configure(
    settings: Settings | None, *, verbose: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Send every record to one handler on `stream` (stderr) in the configured format; returns it,
    so that a front end (the console) can move it elsewhere."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(drop_unavoidable)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    return handler


def redirect(handler: logging.Handler, *, verbose: bool = False) -> None:
    """Send log records to `handler` instead of stderr, in the same format and with the same
    filters; from WARNING up unless `verbose` (the console, whose terminal is the conversation)."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        handler.setFormatter(old.formatter)
        for kept in old.filters:
            handler.addFilter(kept)
        root.removeHandler(old)
    level = logging.DEBUG if verbose else logging.WARNING
    handler.setLevel(level)
    root.setLevel(level)
    root.addHandler(handler)


__all__ = [
    "JsonFormatter",
    "TextFormatter",
    "configure",
    "drop_unavoidable",
    "mask",
    "redirect",
    "secrets_of",
]
