"""The admin pages: a room of its own on the web server, signed in from the chat. They read the
ledger through storage (ledger, records) and change limits through quotas, never the engine.
"""

from __future__ import annotations

from bot.admin.alerts import XaiWatch, alert_text
from bot.admin.cli import admin_link_command
from bot.admin.picture import usage_picture
from bot.admin.routes import mount
from bot.admin.signin import IDLE_TIMEOUT, LINK_TTL, Admin, SignIns, admin_link

__all__ = [
    "IDLE_TIMEOUT",
    "LINK_TTL",
    "Admin",
    "SignIns",
    "XaiWatch",
    "admin_link",
    "admin_link_command",
    "alert_text",
    "mount",
    "usage_picture",
]
