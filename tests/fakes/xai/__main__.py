"""Run the fake xAI API standalone: `python -m tests.fakes.xai [--port N]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tests.fakes.xai.server import FakeXAI


async def _serve(port: int) -> None:
    fake = FakeXAI()
    await fake.start(port=port)
    try:
        print(f"fake xAI at {fake.base_url} (key {fake.api_key}); Ctrl-C stops it", flush=True)
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake xAI API.")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
