"""What admins set for a channel or a whole workspace (the place_setting table), read as one value
per place: a channel's setting wins over its workspace's, field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, conflict_insert
from bot.platform import Place
from bot.tables import PlaceSetting

__all__ = ["PlaceSettings", "read_place_settings", "set_system_prompt"]


@dataclass(frozen=True)
class PlaceSettings:
    """A place's settings. Each field is a place_setting column of the same name (None: unset),
    so a new setting (a default model, search tools, their domains and handles) is one field here."""

    system_prompt: str | None = None


_COLUMNS = tuple(getattr(PlaceSetting, f.name) for f in fields(PlaceSettings))
_READ_SETTINGS = select(col(PlaceSetting.channel), *_COLUMNS).where(
    col(PlaceSetting.platform) == bindparam("w_platform"),
    col(PlaceSetting.workspace) == bindparam("w_workspace"),
    or_(col(PlaceSetting.channel) == bindparam("w_channel"), col(PlaceSetting.channel) == ""),
)


async def read_place_settings(session: AsyncSession, place: Place) -> PlaceSettings:
    """The settings of `place`'s channel, else of its workspace, field by field (one SELECT)."""
    params = {"w_platform": place.platform, "w_workspace": place.workspace, "w_channel": place.channel}
    rows = (await session.exec(_READ_SETTINGS, params=params)).all()
    # The workspace's row ("" channel) first, so the channel's values overwrite it.
    values: dict[str, object] = {}
    for row in sorted(rows, key=lambda r: r[0] != ""):
        values.update({f.name: v for f, v in zip(fields(PlaceSettings), row[1:], strict=True) if v})
    return PlaceSettings(**values)  # type: ignore[arg-type]


async def set_system_prompt(
    sessions: Sessions,
    place: Place,
    prompt: str | None,
    *,
    whole_workspace: bool,
    by: str,
    now: datetime,
) -> None:
    channel = "" if whole_workspace else place.channel
    async with sessions() as session:
        statement = conflict_insert(session, PlaceSetting).values(
            platform=place.platform,
            workspace=place.workspace,
            channel=channel,
            system_prompt=prompt,
            updated_by=by,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "workspace", "channel"],
            set_={"system_prompt": prompt, "updated_by": by, "updated_at": now},
        )
        await session.exec(statement)
        await session.commit()
