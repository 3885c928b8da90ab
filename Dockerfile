# syntax=docker/dockerfile:1
#
# One image for every salespulse service (api with its dashboard, relay, projector,
# alerter);
# docker-compose.yml picks the role with the command, e.g. `salespulse relay`.
#
#   docker build -t salespulse .
#   docker run --rm salespulse salespulse --help

ARG PYTHON_IMAGE=python:3.11-slim

# ------------------------------------------------------- dashboard charts stage
# ECharts from the npm registry, pinned by dashboard/package-lock.json (as `make dashboard`).
FROM node:20-slim AS charts
WORKDIR /charts
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C compiler only for dependencies without a wheel for the target platform
# (faust-streaming 0.15.3 ships no linux/arm64 wheel); it stays in this stage.
# Debian package versions follow the base image, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Runtime dependencies first, read from pyproject.toml, so that this layer is
# cached until the dependency list changes. Runtime deps only: no [test] extra.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself (what .dockerignore lets through), with the dashboard's chart
# library in the place the package data expects it.
COPY . .
COPY --from=charts /charts/node_modules/echarts/dist/echarts.min.js \
     services/api/dashboard/vendor/echarts.min.js
RUN pip install . \
 && pip check \
 && salespulse --help > /dev/null

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime

# libpq5: psycopg (eventsourcing[postgres]) loads libpq at run time.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 salespulse \
 && useradd --system --uid 10001 --gid salespulse --create-home \
      --home-dir /home/salespulse --shell /usr/sbin/nologin salespulse \
 && mkdir -p /app \
 && chown salespulse:salespulse /app

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Writable working directory: faust keeps its local table state under the
# working directory, and the embedded defaults write .salespulse/ here.
WORKDIR /app
# Numeric so that runtimes can verify the user is not root (runAsNonRoot).
USER 10001:10001

EXPOSE 8000

# No HEALTHCHECK here: only the api role serves HTTP; docker-compose.yml gives
# the api its own healthcheck.
CMD ["salespulse", "api", "--host", "0.0.0.0", "--port", "8000"]
