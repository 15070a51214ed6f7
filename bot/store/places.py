"""What admins set for a channel or a whole workspace (the place_setting table), read as one value
per place: a channel's setting wins over its workspace's, field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, conflict_insert
from bot.platform import Place
from bot.tables import PlaceSetting

__all__ = [
    "PlaceSettings",
    "SettingLayers",
    "read_place_settings",
    "read_setting_layers",
    "set_place_settings",
    "set_system_prompt",
]


@dataclass(frozen=True)
class PlaceSettings:
    """A place's settings. Each field is a place_setting column of the same name (None: unset),
    so a new setting is one field here. `tools` is "web,x,code" (any of them) or "none";
    `search_domains` "a.com,b.org" (allowed) or "-a.com" (excluded) or "none"; `x_handles` "xai"
    or "none". bot/search.py reads them."""

    system_prompt: str | None = None
    model: str | None = None
    tools: str | None = None
    search_domains: str | None = None
    x_handles: str | None = None


@dataclass(frozen=True)
class SettingLayers:
    """A place's settings as set for its channel and for its whole workspace, apart."""

    channel: PlaceSettings
    workspace: PlaceSettings

    @property
    def merged(self) -> PlaceSettings:
        """The channel's values, else the workspace's, field by field."""
        values = {f.name: getattr(self.channel, f.name) or getattr(self.workspace, f.name) for f in FIELDS}
        return PlaceSettings(**values)


FIELDS = fields(PlaceSettings)
_COLUMNS = tuple(getattr(PlaceSetting, f.name) for f in FIELDS)
_READ_SETTINGS = select(col(PlaceSetting.channel), *_COLUMNS).where(
    col(PlaceSetting.platform) == bindparam("w_platform"),
    col(PlaceSetting.workspace) == bindparam("w_workspace"),
    or_(col(PlaceSetting.channel) == bindparam("w_channel"), col(PlaceSetting.channel) == ""),
)


async def read_setting_layers(session: AsyncSession, place: Place) -> SettingLayers:
    """The settings of `place`'s channel and of its workspace (one SELECT)."""
    params = {"w_platform": place.platform, "w_workspace": place.workspace, "w_channel": place.channel}
    rows = (await session.exec(_READ_SETTINGS, params=params)).all()
    layers = {"": PlaceSettings(), place.channel: PlaceSettings()}
    for row in rows:
        values = {f.name: v for f, v in zip(FIELDS, row[1:], strict=True) if v}
        layers[row[0]] = PlaceSettings(**values)
    return SettingLayers(channel=layers[place.channel], workspace=layers[""])


async def read_place_settings(session: AsyncSession, place: Place) -> PlaceSettings:
    """The settings of `place`'s channel, else of its workspace, field by field (one SELECT)."""
    return (await read_setting_layers(session, place)).merged


async def set_place_settings(
    sessions: Sessions,
    place: Place,
    changes: Mapping[str, str | None],
    *,
    whole_workspace: bool,
    by: str,
    now: datetime,
) -> None:
    """Set some fields (PlaceSettings names) of the channel's or the workspace's settings; None
    unsets a field there. Fields not in `changes` keep their values."""
    async with sessions() as session:
        statement = conflict_insert(session, PlaceSetting).values(
            platform=place.platform,
            workspace=place.workspace,
            channel="" if whole_workspace else place.channel,
            updated_by=by,
            updated_at=now,
            **changes,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "workspace", "channel"],
            set_={**changes, "updated_by": by, "updated_at": now},
        )
        await session.exec(statement)
        await session.commit()


async def set_system_prompt(
    sessions: Sessions,
    place: Place,
    prompt: str | None,
    *,
    whole_workspace: bool,
    by: str,
    now: datetime,
) -> None:
    await set_place_settings(
        sessions, place, {"system_prompt": prompt}, whole_workspace=whole_workspace, by=by, now=now
    )
