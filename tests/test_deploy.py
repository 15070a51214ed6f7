"""What an operator copies stays true: `.env.example` and README's configuration table name every
setting with its default, and docker-compose.yml migrates once, then runs the image on PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")


def defaults() -> dict[str, str]:
    """Each setting's variable name and its default as written in a .env file ("" when unset)."""

    def written(value: Any) -> str:
        if value is None or value == ():
            return ""
        return str(value) if not isinstance(value, Decimal) else f"{value}"

    return {name.upper(): written(field.default) for name, field in Settings.model_fields.items()}


def env_example() -> dict[str, tuple[str, bool, str]]:
    """NAME -> (value, commented out, the comment line above it)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    found: dict[str, tuple[str, bool, str]] = {}
    for previous, line in zip(["", *lines], lines, strict=False):
        match = ASSIGNMENT.match(line)
        if match:
            assert match.group(2) not in found, f"{match.group(2)} twice"
            found[match.group(2)] = (match.group(3), bool(match.group(1)), previous)
    return found


def test_env_example_names_every_setting_with_its_default_and_meaning() -> None:
    example = env_example()
    assert set(example) == set(defaults())
    for name, default in defaults().items():
        value, commented, meaning = example[name]
        assert value == default, f"{name}: .env.example says {value!r}, Settings {default!r}"
        assert meaning.startswith("# ") and not ASSIGNMENT.match(meaning) and len(meaning) > 8, name
        # Only the required key is left active: an uncommented empty token would enable a platform.
        assert commented == (name != "XAI_API_KEY"), name


def test_readme_configuration_table_names_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") : readme.index("## Chat commands")]
    rows = dict(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|", section, flags=re.MULTILINE))
    assert set(rows) == set(defaults())
    for name, default in defaults().items():
        if default:
            assert f"`{default}`" in rows[name], f"{name}: README says {rows[name]!r}, Settings {default!r}"


def test_compose_migrates_once_then_runs_the_image_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    db, migrate, bot = services["db"], services["migrate"], services["bot"]
    assert migrate["command"] == ["grokbot", "migrate"] and migrate["restart"] == "no"
    assert "command" not in bot and bot["image"] == migrate["image"]  # the image's CMD: grokbot run
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert bot["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    url = bot["environment"]["DATABASE_URL"]
    assert migrate["environment"]["DATABASE_URL"] == url
    env = db["environment"]
    assert (
        url
        == f"postgresql+asyncpg://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@db:5432/{env['POSTGRES_DB']}"
    )
    assert Settings(database_url=url).database_url == url
    assert "/healthz" in " ".join(bot["healthcheck"]["test"]) and "pg_isready" in db["healthcheck"]["test"][1]
    assert bot["ports"] == ["${GROKBOT_HOST_PORT:-3000}:" + bot["environment"]["PORT"]]


def test_the_procfile_stays() -> None:
    assert (ROOT / "Procfile").read_text().splitlines() == ["release: grokbot migrate", "web: grokbot run"]
