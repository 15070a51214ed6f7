# syntax=docker/dockerfile:1
# grokbot as a container: the wheel is built in the first stage and installed, with its
# dependencies, into a virtual environment in the second; the bot runs as an unprivileged user.
# tests/test_packaging.py runs this file's RUN and CMD steps (and its health check) against a
# fresh virtual environment outside the checkout, so what is written here is what CI proved.
#   docker build -t grokbot .   ·   docker compose up   (see README, "Deploy with Docker")

# The Python CI tests on.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 WHEELS=/wheels
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir "$WHEELS" .

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    WHEELS=/wheels VENV=/opt/grokbot PATH=/opt/grokbot/bin:$PATH \
    PORT=3000 DATABASE_URL=sqlite+aiosqlite:////data/grokbot.db
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "$VENV" && "$VENV/bin/pip" install "$WHEELS"/grokbot-*.whl
RUN useradd --system --uid 10001 --create-home --home-dir /data grokbot
USER grokbot
WORKDIR /data
VOLUME /data
EXPOSE $PORT
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
CMD ["grokbot", "run"]
