"""The admin pages' routes, mounted on the web server (`mount`), like the Slack adapter's events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from bot.admin import site as pages
from bot.admin import views
from bot.admin.signin import SignIns
from bot.admin.site import PREFIX, Handler, Site, guarded, templates, with_headers
from bot.db import Sessions
from bot.grok import PriceBook
from bot.quotas import Quotas
from bot.settings import Settings
from bot.web import WebServer

USER = PREFIX + "/users/{platform}/{workspace}/{user_id}"


def mount(
    web: WebServer,
    *,
    sessions: Sessions,
    settings: Settings,
    quotas: Quotas,
    clock: Callable[[], datetime],
    prices: PriceBook | None = None,
) -> Site:
    """Add /admin/… to `web` (before it starts). Every page but sign-in and static files needs a
    session. Returns the pages' `Site`."""
    site = Site(sessions, settings, quotas, SignIns(sessions, clock=clock), clock, prices, templates())
    public: list[tuple[str, str, Handler]] = [
        ("GET", PREFIX + "/signin/{token}", partial(pages.signin_page, site)),
        ("POST", PREFIX + "/signin", partial(pages.signin, site)),
        ("GET", PREFIX + "/signed-out", partial(pages.signed_out, site)),
        ("GET", PREFIX + "/static/{name}", pages.static),
    ]
    private: list[tuple[str, str, Handler]] = [
        ("GET", PREFIX + "/", guarded(site, views.overview)),
        ("POST", PREFIX + "/signout", guarded(site, pages.signout, form=True)),
        ("GET", PREFIX + "/users", guarded(site, views.users)),
        ("GET", PREFIX + "/users.csv", guarded(site, views.users)),
        ("GET", USER, guarded(site, views.user)),
        ("GET", USER + "/requests.csv", guarded(site, views.user)),
        ("POST", USER + "/limits", guarded(site, views.user_limits, form=True)),
        ("GET", PREFIX + "/workspaces", guarded(site, views.workspaces)),
        ("GET", PREFIX + "/workspaces.csv", guarded(site, views.workspaces)),
        ("GET", PREFIX + "/digests", guarded(site, views.digests)),
        ("GET", PREFIX + "/digests.csv", guarded(site, views.digests)),
        (
            "POST",
            PREFIX + "/digests/{digest_id:[0-9]+}/{action:pause|resume|remove}",
            guarded(site, views.digest_action, form=True),
        ),
        ("GET", PREFIX + "/deferred", guarded(site, views.deferred)),
        ("GET", PREFIX + "/deferred.csv", guarded(site, views.deferred)),
    ]
    for method, path, handler in public + private:
        web.add_route(method, path, with_headers(handler))
    return site
