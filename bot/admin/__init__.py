"""The admin pages: a room of its own on the web server, signed in from the chat. They read the
ledger through storage (ledger, records) and change limits through quotas, never the engine.
"""

from __future__ import annotations

from bot.admin.alerts import XaiWatch
from bot.admin.cli import admin_link_command
from bot.admin.picture import usage_picture
from bot.admin.routes import mount
from bot.admin.signin import Admin, SignIns, admin_link

__all__ = [
    "Admin",
    "SignIns",
    "XaiWatch",
    "admin_link",
    "admin_link_command",
    "mount",
    "usage_picture",
]
