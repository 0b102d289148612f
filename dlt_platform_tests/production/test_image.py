"""The project's image, built and run for real with podman (issue 27).

The image is built once per session as `make image` builds it (layers cached), then run as Cloudflare runs it:
the entrypoint unchanged, with exactly the environment the Worker forwards (settings.CONTAINER_ENV, read from
the Worker's own variables), pointed at the local stack: the Worker in wrangler dev (its DAGSTER_URL is the
container's port, so no Dagster runs on the host), Postgres for Dagster's storage and the BigQuery emulator as the
warehouse. A run requested through the Worker's operator API executes inside the container and its rows land in
the emulator. podman missing is a failure that says to run `make install-debian` (`make test` installs it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tomllib

import pytest

from dlt_platform.local.loopback import free_port
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform.settings import CONTAINER_ENV, PROJECT_ROOT
from dlt_platform_tests.bigquery_fixtures import emulator_client
from dlt_platform_tests.production.image import (
    IMAGE,
    IMAGE_UID,
    PODMAN,
    ImageContainer,
    build_image,
    image_size,
    podman,
)

# On a clean podman store the first test also builds the base (debootstrap) and every layer of the image.
pytestmark = pytest.mark.timeout(1800)

SOURCE = "cloudflare_kv_orders"
# The target: the image is pulled at every cold start of a Cloudflare instance.
MAX_IMAGE_BYTES = 800_000_000
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
# What the container takes beside the Worker's variables: where the warehouse is. In production that is
# Google's own endpoint (no variable); here it is the emulator. And the run in this container's own processes:
# the local stack's run containers are processes on the host, not of the image.
NOT_FROM_THE_WORKER = ("BIGQUERY_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "DLT_PLATFORM_RUN_CONTAINERS")


@pytest.fixture(scope="session")
def image():
    seconds = build_image()
    print(f"\n`make image`: {seconds:.1f} s, {image_size() / 1e6:.0f} MB")
    return IMAGE


@pytest.fixture(scope="module")
def image_stack(tmp_path_factory, postgres, image):  # noqa: F811  (postgres: the session fixture of conftest)
    root = tmp_path_factory.mktemp("image_stack")
    worker_port, container_port = free_port(), free_port()
    stack = LocalStack(paths=StackPaths(state_dir=root / "state", data_dir=root / "data"), worker_port=worker_port,
                       dagster_port=container_port, warehouse="bigquery", emulator_port=free_port(),
                       sample_api_port=free_port(),
                       # The Worker's variables: what it forwards to the container (CONTAINER_ENV) when set.
                       extra_worker_vars={
                           "DLT_ORCHESTRATOR_URL": f"http://127.0.0.1:{worker_port}",
                           "DAGSTER_PG_URL": postgres.create_database(f"dagster_{root.name.lower().replace('-', '_')}"),
                           "DLT_PLATFORM_DESTINATION": "bigquery",
                           "DLT_PLATFORM_KV_TRANSPORT": "worker",
                       })
    try:
        stack.start_emulator()
        stack.start_worker()
        stack.sync_sources()
        forwarded = {variable.name: stack.tokens()[variable.name] for variable in CONTAINER_ENV
                     if stack.tokens().get(variable.name)}
        emulator = stack.emulator.client_env()
        stack.container_env = {**forwarded, "BIGQUERY_EMULATOR_HOST": emulator["BIGQUERY_EMULATOR_HOST"],
                               "GOOGLE_CLOUD_PROJECT": emulator["GOOGLE_CLOUD_PROJECT"],
                               "DLT_PLATFORM_RUN_CONTAINERS": forwarded.get("DLT_PLATFORM_RUN_CONTAINERS", "0")}
        stack.container = ImageContainer(env=stack.container_env, image=image, port=container_port).start()
        stack.container.wait_until_answering()
        yield stack
    finally:
        if getattr(stack, "container", None):
            stack.container.remove()
        stack.stop_all()


def test_the_container_gets_exactly_what_the_worker_forwards(image_stack):
    names = {variable.name for variable in CONTAINER_ENV}
    extra = set(image_stack.container_env) - names
    assert extra <= set(NOT_FROM_THE_WORKER), extra
    assert {"DLT_ORCHESTRATOR_URL", "DLT_INTERNAL_TOKEN", "DAGSTER_PG_URL"} <= set(image_stack.container_env)
    # Nothing else of the Worker's (operator token, session key) reaches the container.
    config = json.loads(podman("container", "inspect", image_stack.container.name))[0]["Config"]["Env"]
    given = {entry.split("=", 1)[0] for entry in config}
    assert "DLT_OPERATOR_TOKEN" not in given and "ADMIN_SESSION_KEY" not in given
    assert set(image_stack.container_env) <= given


def test_a_run_requested_through_the_worker_loads_bigquery_from_inside_the_image(image_stack):
    with image_stack.operator() as operator:
        run_id = operator.request_run(SOURCE, idempotency_key="image-1")
        run = operator.wait_for_runs([run_id], timeout=600)[run_id]
    assert run["status"] == "succeeded", run
    # The only Dagster is the container's: it knows the run the Worker launched, as a success.
    status = image_stack.dagster_graphql(RUN_STATUS, {"id": run["dagster_run_id"]})["data"]["runOrError"]
    assert status == {"__typename": "Run", "status": "SUCCESS"}
    seeded = len(sample_namespaces(dt.datetime.now(dt.timezone.utc).date())["ORDERS_KV"])
    client = emulator_client(image_stack.emulator)
    rows = list(client.query(f"select count(*), count(distinct cf_kv_key) from "
                             f"`{image_stack.emulator.project_id}.source_cloudflare.orders_kv`").result())
    assert tuple(rows[0]) == (seeded, seeded)


def test_the_container_runs_as_its_non_root_user(image_stack):
    uids = image_stack.container.exec(
        "/app/.venv/bin/python", "-c",
        "import os\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try: print(pid, open(f'/proc/{pid}/status').read().split('Uid:')[1].split()[0])\n"
        "    except (OSError, IndexError): pass")
    processes = dict(line.split() for line in uids.splitlines())
    assert processes.get("1") == str(IMAGE_UID), processes  # `dlt-platform serve`, the entrypoint
    assert len(processes) >= 4 and set(processes.values()) == {str(IMAGE_UID)}, processes


def test_nothing_the_container_must_keep_is_on_its_disk(image_stack, postgres):
    """After a run: no database on the container's disk; a new container (a new, empty disk) has the history."""
    with image_stack.operator() as operator:
        before = [run for run in operator.runs(source_id=SOURCE, limit=20) if run["status"] == "succeeded"]
        if not before:
            run_id = operator.request_run(SOURCE, idempotency_key="image-2")
            before = list(operator.wait_for_runs([run_id], timeout=600).values())
    assert before and before[0]["status"] == "succeeded", before
    written = image_stack.container.changed_paths()
    assert not [line for line in written if line.endswith((".db", ".sqlite", ".duckdb", ".wal"))], written

    image_stack.container.remove()
    image_stack.container = ImageContainer(env=image_stack.container_env, image=image_stack.container.image,
                                           port=image_stack.container.port).start()
    image_stack.container.wait_until_answering()
    for run in before:
        status = image_stack.dagster_graphql(RUN_STATUS, {"id": run["dagster_run_id"]})["data"]["runOrError"]
        assert status == {"__typename": "Run", "status": "SUCCESS"}, run


def test_the_image_is_small(image):
    size = image_size(image)
    assert size < MAX_IMAGE_BYTES, f"the image is {size / 1e6:.0f} MB (target < {MAX_IMAGE_BYTES / 1e6:.0f} MB)"
    # As root: /root is closed to the image's user, and uv's cache landed there.
    listed = podman("run", "--rm", "--user", "root", "--entrypoint", "/app/.venv/bin/python", image, "-c",
                    "import importlib.util as u, os\n"
                    "print([m for m in ('pandas', 'uv', 'pytest', 'playwright', 'moto') if u.find_spec(m)])\n"
                    "print(os.path.exists('/root/.cache'), os.path.exists(os.path.expanduser('~/.cache/uv')))")
    assert listed.split("\n")[:2] == ["[]", "False False"], listed


def wrangler_images(repositories: set[str]) -> list[str]:
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    return [tag for tag in listed if tag.rsplit(":", 1)[0] in repositories]


def test_wrangler_deploy_dry_run_builds_the_image_through_podman(image, tmp_path):
    # wrangler names each container class's image <worker name>-<class name, lower case>.
    config = tomllib.loads((PROJECT_ROOT / "wrangler.toml").read_text())
    repositories = {f"localhost/{config['name']}-{container['class_name'].lower()}"
                    for container in config["containers"]}
    for tag in wrangler_images(repositories):  # left by an earlier run: the check must see new ones
        podman("rmi", tag)
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLOUDFLARE_")}
    env.update(WRANGLER_DOCKER_BIN=str(PROJECT_ROOT / "tools" / "container" / "wrangler-docker"),
               WRANGLER_SEND_METRICS="false", WRANGLER_LOG_PATH=str(tmp_path / "logs"))
    result = subprocess.run([str(PROJECT_ROOT / "node_modules" / ".bin" / "wrangler"), "deploy", "--dry-run",
                             "--outdir", str(tmp_path / "bundle")], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    built = wrangler_images(repositories)
    try:
        # One image per container class (the control container, the run containers), each from ./Dockerfile:
        # what `make image` builds, with the same user, entrypoint and environment.
        assert {tag.rsplit(":", 1)[0] for tag in built} == repositories, built
        shape = "{{json .Config.User}} {{json .Config.Entrypoint}} {{json .Config.Env}}"
        for tag in built:
            assert podman("image", "inspect", "--format", shape, tag) == podman("image", "inspect", "--format",
                                                                                 shape, image)
    finally:
        for tag in built:
            podman("rmi", tag)


def test_without_podman_the_message_says_how_to_install_it(tmp_path):
    result = subprocess.run([str(PODMAN), "images"], env={"PATH": str(tmp_path)}, capture_output=True, text=True)
    assert result.returncode == 127
    assert "podman is not installed: run `make install-debian`" in result.stderr
