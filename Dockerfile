# The Dagster container: webserver (UI under /dagster, port 3000) and daemon, run by `dlt-platform serve`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    DAGSTER_HOME=/app/.dagster \
    DLT_PLATFORM_DATA_DIR=/app/.data \
    DLT_PLATFORM_CONTAINER=1

RUN pip install --no-cache-dir "uv>=0.9" \
    && useradd --create-home --uid 10001 dlt

WORKDIR /app
# Dependencies first (cached while only the code changes), exactly as locked.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project
COPY dlt_platform ./dlt_platform
COPY config ./config
COPY workspace.yaml dagster.yaml dagster.postgres.yaml ./
RUN uv sync --frozen && mkdir -p /app/.dagster /app/.data && chown -R dlt /app/.dagster /app/.data

USER dlt
EXPOSE 3000
# Container disk is ephemeral: run history goes to Postgres when DAGSTER_PG_URL is set (serve then uses
# dagster.postgres.yaml), data to BigQuery and R2. Port 3000 is the Host-checking guard in front of the webserver.
ENTRYPOINT ["/app/.venv/bin/dlt-platform", "serve", "--host", "0.0.0.0", "--port", "3000"]
