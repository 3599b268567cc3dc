# syntax=docker/dockerfile:1

# Image of the chat example served by `python -m server`.
#   docker build -t channels-chat .
#   docker run --rm -p 8000:8000 channels-chat
# Every server option is an environment variable CHANNELS_SERVER_<OPTION> (see README.md, Deployment).

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: turn the project into a virtualenv; compilers and pip caches stay here -----------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY channels ./channels
COPY daphne ./daphne
COPY channels_redis ./channels_redis
# The [redis] extra brings the Redis channel layer's dependencies (docker-compose uses it).
RUN /opt/venv/bin/pip install --no-cache-dir ".[redis]"

# --- final: the venv and the example, nothing else ----------------------------------------------
FROM ${PYTHON_IMAGE}

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
COPY examples/chat /app

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=chatsite.settings \
    CHANNELS_SERVER_APP_DIR=/app \
    CHANNELS_SERVER_HOST=0.0.0.0 \
    CHANNELS_SERVER_PORT=8000 \
    CHANNELS_SERVER_WORKERS=1 \
    CHANNELS_SERVER_HEALTH_CHECK_PATH=/healthz

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# The server answers the health path itself (no Django involved); the probe is stdlib Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]

# SIGTERM starts the graceful shutdown: stop accepting, finish in-flight responses, close
# WebSockets with 1001; give `docker stop -t` at least CHANNELS_SERVER_TIMEOUT_GRACEFUL_SHUTDOWN.
STOPSIGNAL SIGTERM

ENTRYPOINT ["python", "-m", "server"]
CMD ["chatsite.asgi:application"]
