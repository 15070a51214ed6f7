"""The wheel, installed the way the Dockerfile installs it, outside the checkout: its RUN steps build
the wheel from the Docker build context and install it into a fresh virtual environment; there
`grokbot migrate`, `grokbot check` and a console question work against the fake xAI, and the image's
CMD (`grokbot run`) passes the image's HEALTHCHECK. No Docker engine runs here, so this test runs
the Dockerfile's own commands, read from it, instead of copies of them.

The slow test of the suite (a wheel build and a dependency install: about a minute)."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.xai import FakeXAI, ScriptedResponse
from tests.test_run import free_port, wait_for_status

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
# The one step that only makes sense in an image: a user to run as. Nothing else is skipped.
IMAGE_ONLY = re.compile(r"^useradd ")


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    )
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line]


def run_steps(text: str) -> tuple[list[str], list[str]]:
    """The shell commands of the RUN steps of the build stage and of the final stage."""
    stages: list[list[str]] = []
    for name, arguments in instructions(text):
        if name == "FROM":
            stages.append([])
        elif name == "RUN":
            stages[-1].append(re.sub(r"^(--\S+\s+)+", "", arguments))  # --mount=...: the image's way
    build, final = stages
    return build, final


def exec_form(text: str, name: str) -> list[str]:
    (arguments,) = [a for n, a in instructions(text) if n == name]
    command: list[str] = json.loads(
        arguments[arguments.index("CMD") + 3 :] if name == "HEALTHCHECK" else arguments
    )
    return command


def ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        for pattern in patterns:
            bare = pattern.removeprefix("**/")
            if fnmatch.fnmatch(prefix, pattern) or (
                bare != pattern and fnmatch.fnmatch(parts[depth - 1], bare)
            ):
                return True
    return False


def build_context(destination: Path) -> Path:
    """A copy of the checkout as Docker sends it to the build: without what .dockerignore names."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip()[:1] not in ("", "#")
    ]

    def skip(folder: str, names: list[str]) -> set[str]:
        base = Path(folder).relative_to(ROOT).as_posix()
        return {n for n in names if ignored(n if base == "." else f"{base}/{n}", patterns)}

    shutil.copytree(ROOT, destination, ignore=skip)
    return destination


async def shell(command: str, *, cwd: Path, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", command, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, f"{command}\n{output.decode()[-3000:]}"
    return output.decode()


async def installed(tmp_path: Path) -> dict[str, str]:
    """Run the Dockerfile's RUN steps; the environment of the installed grokbot (its venv first)."""
    build, final = run_steps(DOCKERFILE.read_text())
    assert len(build) == 1 and [bool(IMAGE_ONLY.match(c)) for c in final] == [False, True], final
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_", "PYTHON"))}
    base.pop("DATABASE_URL", None)
    base.pop("VIRTUAL_ENV", None)
    env = {**base, "WHEELS": str(tmp_path / "wheels"), "VENV": str(tmp_path / "venv")}
    await shell(build[0], cwd=build_context(tmp_path / "context"), env=env)
    (tmp_path / "cwd").mkdir()
    await shell(final[0], cwd=tmp_path / "cwd", env=env)
    return {**base, "PATH": f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{base.get('PATH', '')}"}


async def grokbot(*args: str, env: dict[str, str], cwd: Path, stdin: bytes = b"") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "grokbot", *args, cwd=cwd, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(stdin), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.packaging
@pytest.mark.timeout(900)
async def test_the_wheel_installed_as_the_dockerfile_does_migrates_checks_answers_and_runs(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    env = await installed(tmp_path)
    cwd = tmp_path / "cwd"
    env.update(
        XAI_API_KEY=fake_xai.api_key,
        XAI_BASE_URL=fake_xai.base_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'data' / 'grokbot.db'}",
    )
    (tmp_path / "data").mkdir()
    # The package is the installed wheel, not the checkout (nothing of it is on the path).
    where = await shell(
        "python -c 'import bot, adapters; print(bot.__file__, adapters.__file__)'", cwd=cwd, env=env
    )
    assert all(Path(p).is_relative_to(tmp_path / "venv") for p in where.split()), where
    code, output = await grokbot("migrate", env=env, cwd=cwd)
    assert code == 0 and "Database is up to date" in output, output
    code, output = await grokbot("check", env=env, cwd=cwd)
    assert code == 0 and "✗" not in output and "schema up to date" in output, output
    fake_xai.queue_response(ScriptedResponse(text="Hello from the installed wheel."))
    code, output = await grokbot("console", env=env, cwd=cwd, stdin=b"hi there\n")
    assert code == 0 and "grok> Hello from the installed wheel." in output, output
    await runs_and_is_healthy(env, cwd)


async def runs_and_is_healthy(env: dict[str, str], cwd: Path) -> None:
    """The image's CMD, with Slack configured, until the image's HEALTHCHECK passes; then SIGTERM."""
    text = DOCKERFILE.read_text()
    async with FakeSlack() as slack:
        port = free_port()
        env = {
            **env,
            "PORT": str(port),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
        }
        command = exec_form(text, "CMD")
        assert command == ["grokbot", "run"]
        process = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with aiohttp.ClientSession() as http:
                await wait_for_status(http, f"http://127.0.0.1:{port}/readyz", 200, seconds=60)
            probe = exec_form(text, "HEALTHCHECK")
            check = await asyncio.create_subprocess_exec(*probe, cwd=cwd, env=env)
            assert await check.wait() == 0
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, output.decode()


def test_the_dockerfile_is_small_non_root_and_checks_health() -> None:
    text = DOCKERFILE.read_text()
    names = [name for name, _ in instructions(text)]
    assert names.count("FROM") == 2 and "slim" in text  # a build stage and a slim runtime
    assert [a for n, a in instructions(text) if n == "USER"] == ["grokbot"]
    assert "EXPOSE $PORT" in text and "/healthz" in " ".join(exec_form(text, "HEALTHCHECK"))
    assert "curl" not in text and "wget" not in text
