# The Dagster container: webserver (UI under /dagster, port 3000) and daemon, run by `dlt-platform serve`.
# Built in two stages: `deps` installs the locked dependencies and the project (editable) with uv; the image
# itself takes only that virtualenv and the code (no uv, no download cache, no test extra). Size and start
# times: docs/deploy.md, "5. The image".
FROM python:3.11-slim AS deps
# UV_NO_CACHE: nothing downloaded is kept (today's image carried 591 MB of it); bytecode compiled at install, so no
# process of the non-root user (which cannot write there) compiles it again at every start.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir "uv>=0.9"
WORKDIR /app
# This stage depends on pyproject.toml and uv.lock alone, so it (and the image's copy of its virtualenv) stays
# cached while the code or the docs change. Installed exactly as locked. The project's editable install is a .pth
# file naming /app, its metadata and console scripts: made here from an empty package and README, the real code
# comes in the image. pandas and db-dtypes (its only user) come with dlt's bigquery extra for reading query
# results into DataFrames, which neither loads nor `serve` do: left out (the image test's BigQuery load runs
# without them). Packages' own test suites, C headers and Cython sources (numpy's and pyarrow's, 35 MB) are for
# building against them, never imported: removed in the same step, so no layer keeps them.
COPY pyproject.toml uv.lock ./
RUN mkdir dlt_platform && touch dlt_platform/__init__.py README.md \
    && uv sync --frozen --no-install-package pandas --no-install-package db-dtypes \
    && rm -rf dlt_platform README.md \
    && find .venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && find .venv/lib -path '*/site-packages/*' -type f \
       \( -name '*.h' -o -name '*.hpp' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.cc' -o -name '*.cpp' \) -delete

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/app/.dagster \
    DLT_PLATFORM_DATA_DIR=/app/.data \
    DLT_PLATFORM_CONTAINER=1

RUN useradd --create-home --uid 10001 dlt

WORKDIR /app
COPY --from=deps /app/.venv /app/.venv
COPY dlt_platform ./dlt_platform
COPY config ./config
COPY workspace.yaml dagster.yaml dagster.postgres.yaml ./
# The project's own bytecode too (its folder is root's: the non-root user could not write it at run time).
RUN /app/.venv/bin/python -m compileall -q -j 0 dlt_platform \
    && mkdir -p /app/.dagster /app/.data && chown dlt /app/.dagster /app/.data

USER dlt
EXPOSE 3000
# Container disk is ephemeral: run history goes to Postgres when DAGSTER_PG_URL is set (serve then uses
# dagster.postgres.yaml), data to BigQuery and R2. Port 3000 is the Host-checking guard in front of the webserver.
ENTRYPOINT ["/app/.venv/bin/dlt-platform", "serve", "--host", "0.0.0.0", "--port", "3000"]
