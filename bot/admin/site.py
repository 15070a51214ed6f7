"""The admin pages on the web server: sign-in, the session and CSRF checks every page passes,
security headers, static files and page rendering. The pages themselves are in bot.admin.views.

A sign-in link opens a page of ours that completes the sign-in with a same-site POST: the first
request after a click in Slack or Discord is a cross-site navigation, and browsers do not send a
SameSite=Strict cookie set during a redirect chain that such a navigation started.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from bot.admin.ledger import PastDays, Scope
from bot.admin.signin import Admin, SignIns, csrf_matches, csrf_token
from bot.db import Sessions
from bot.grok import PriceBook
from bot.quotas import Quotas
from bot.settings import Settings

log = logging.getLogger(__name__)

COOKIE = "grokbot_admin"
PREFIX = "/admin"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain; charset=utf-8"}
# Our own scripts and styles only; nothing inline, no other origin, no framing, no referrer (a
# sign-in link's token must not travel on in a Referer header).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

ADMIN_KEY = web.RequestKey("admin", Admin)
Page = Callable[["Site", web.Request, Admin], Awaitable[web.StreamResponse]]


@dataclass
class Site:
    """What the pages read and change, and how they are drawn."""

    sessions: Sessions
    settings: Settings
    quotas: Quotas
    signins: SignIns
    clock: Callable[[], datetime]
    prices: PriceBook | None
    templates: jinja2.Environment
    past: PastDays = field(default_factory=PastDays)  # sums of days long ended, read once

    @property
    def secure(self) -> bool:
        return (self.settings.grokbot_public_url or "").startswith("https://")

    def render(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        admin = request.get(ADMIN_KEY)
        token = request.cookies.get(COOKIE, "")
        page = self.templates.get_template(template).render(
            admin=admin,
            csrf=csrf_token(token) if admin is not None else "",
            prefix=PREFIX,
            path=request.path,
            **context,
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def scope_of(admin: Admin) -> Scope | None:
    """The workspace an admin vouched for by the platform may see; None: every workspace."""
    return Scope(admin.platform, admin.workspace) if admin.workspace else None


def csv_response(name: str, headings: Sequence[str], rows: Sequence[Sequence[object]]) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headings)
    writer.writerows(rows)
    return csv_text(name, out.getvalue())


def csv_text(name: str, text: str) -> web.Response:
    response = web.Response(text=text, content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.admin", "templates"),
        autoescape=True,  # every value a user wrote (names, channels) is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def with_headers(handler: Handler) -> Handler:
    """Every admin response, refusals and redirects too, carries the security headers."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            for name, value in HEADERS.items():
                exc.headers.setdefault(name, value)
            raise
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return wrapped


def guarded(site: Site, page: Page, *, form: bool = False) -> Handler:
    """A page that needs a live session (else 401), and for a form, the session's CSRF token (else 403)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        token = request.cookies.get(COOKIE, "")
        admin = await site.signins.admin_for(token)
        if admin is None:
            return site.render(request, "message.html", status=401, title="Sign in", message=SIGN_IN_HINT)
        request[ADMIN_KEY] = admin
        if form:
            posted = await request.post()
            if not csrf_matches(token, str(posted.get("csrf", ""))):
                return site.render(request, "message.html", status=403, title="Refused", message=CSRF_REFUSED)
        return await page(site, request, admin)

    return handler


SIGN_IN_HINT = "Sign in with the link the bot sends you privately when you run `admin` in the chat."
CSRF_REFUSED = "This form was not sent from the admin pages (its security token is missing or wrong)."
LINK_REFUSED = "This sign-in link was used already or has expired. Run `admin` in the chat for a new one."


async def signin_page(site: Site, request: web.Request) -> web.StreamResponse:
    """A page of ours with the sign-in button: the session starts on its same-site POST."""
    return site.render(request, "signin.html", title="Sign in", token=request.match_info["token"])


async def signin(site: Site, request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    session_token = await site.signins.redeem(str(posted.get("token", "")))
    if session_token is None:
        return site.render(request, "message.html", status=403, title="Link refused", message=LINK_REFUSED)
    response = web.Response(status=303, headers={"Location": f"{PREFIX}/"})
    response.set_cookie(
        COOKIE, session_token, path=PREFIX, httponly=True, samesite="Strict", secure=site.secure
    )
    log.info("admin signed in")
    return response


async def signout(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    await site.signins.sign_out(request.cookies.get(COOKIE, ""))
    response = web.Response(status=303, headers={"Location": f"{PREFIX}/signed-out"})
    response.del_cookie(COOKIE, path=PREFIX)
    return response


async def signed_out(site: Site, request: web.Request) -> web.StreamResponse:
    return site.render(request, "message.html", title="Signed out", message="You are signed out.")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    resource = resources.files("bot.admin").joinpath("static", name)
    if "/" in name or suffix not in STATIC_TYPES or not resource.is_file():
        raise web.HTTPNotFound()
    response = web.Response(body=resource.read_bytes(), content_type=STATIC_TYPES[suffix].split(";")[0])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
