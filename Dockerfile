# syntax=docker/dockerfile:1
# One image per service, all built from this file at the repository root:
#
#   docker build --build-arg SERVICE=registry -t simpul/registry .
#
# The same image runs every role of its service (docker-compose.yml and deploy/kubernetes/ pick
# one with the command): `api` (the default), `worker` (outbox relay + consumers), `migrate`.
#
# Stage 1 installs the locked third-party dependencies of simpul-$SERVICE only (no workspace code),
# so that layer is rebuilt only when uv.lock or a pyproject.toml changes; stage 2 adds the sources
# of shared/ and services/$SERVICE/ as editable workspace members. Editable on purpose: the
# service finds its alembic.ini and migrations/ next to its src/ folder.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG SERVICE
RUN test -n "$SERVICE" \
    || { echo "build with --build-arg SERVICE=registry|programs|referrals|complaints" >&2; exit 1; }

COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# The workspace's manifests: uv needs every member's pyproject.toml to read the workspace.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/registry/pyproject.toml services/registry/
COPY services/programs/pyproject.toml services/programs/
COPY services/referrals/pyproject.toml services/referrals/
COPY services/complaints/pyproject.toml services/complaints/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "simpul-$SERVICE"

COPY shared/ shared/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "simpul-$SERVICE" \
    && python -m compileall -q shared/src "services/$SERVICE/src" "services/$SERVICE/migrations"

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="simpul-${SERVICE}" \
      org.opencontainers.image.description="Simpul ${SERVICE} service (api | worker | migrate)"

RUN groupadd --system --gid 10001 simpul \
    && useradd --system --uid 10001 --gid simpul --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin simpul

# Code and venv stay owned by root: the service user can read them, not change them.
COPY --from=build /app /app
WORKDIR /app

ENV SERVICE=${SERVICE} \
    PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
EXPOSE 8000 9000

# `exec` so Python is PID 1 and receives SIGTERM (uvicorn shuts down gracefully on it).
CMD ["sh", "-c", "exec python -m \"$SERVICE\" api --host 0.0.0.0 --port 8000"]
