"""Size and cold start of the project's image.

  .venv/bin/python -m dlt_platform_tests.bench.image [--image dlt-dagster] [--compare dlt-dagster:before] [--starts 3]

For each image: its uncompressed size, then `--starts` cold starts of a fresh container (a new disk each time, as
a Cloudflare instance starts), each timed from `podman run` to
1. Dagster answering GET /dagster/server_info on the container's port, and
2. a run's first request: as soon as Dagster answers, a run of the sample KV source (cloudflare_kv_orders) is
   launched through Dagster's GraphQL API; the time is when the Cloudflare KV API (this process's loopback
   double, kv_api_server.py) sees the run's first request.
The container runs throw-away (DLT_PLATFORM_ALLOW_EMBEDDED=1: history and the DuckDB warehouse on its own disk)
with the run in its own processes (DLT_PLATFORM_RUN_CONTAINERS=0), so only the image is measured, not the Worker,
Postgres or a run container's own start. Medians are printed beside today's figures.

`--compare` measures a second image the same way, e.g. the previous Dockerfile built as `make image` builds
(`git show REV:Dockerfile > /tmp/Dockerfile.before`, then
`tools/container/podman build --pull=never -t dlt-dagster:before -f /tmp/Dockerfile.before .`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState
from dlt_platform_tests.production.image import IMAGE, ImageContainer, ImageError, image_size

# The Dockerfile before issue 27 (one stage, uv's download cache left in the image) on the same stand-in base,
# measured with this script on 2026-12-07 04:05 UTC (medians of 2 starts; 2 cores under a load average of ~18
# from other test sessions): see docs/deploy.md, "5. The image". On the first, fuller stand-in base it was 1.73 GB.
TODAY = {"size": "1.51 GB", "answering": 86.0, "first_request": 132.9}

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
API_TOKEN = "bench-token-not-a-secret"
# The sample KV source of config/sources.json, baked into the image.
SOURCE_ID, NAMESPACE_ID, NAMESPACE_TITLE = "cloudflare_kv_orders", "ORDERS_KV_NAMESPACE_ID", "ORDERS_KV"
ASSET_KEY = ["source_cloudflare", "orders_kv"]
LAUNCH_RUN = """mutation($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) { __typename ... on PythonError { message } ... on Error { message } }
}"""


def launch_when_loaded(container: ImageContainer, timeout: float = 180) -> None:
    """Launch the source's run as the Worker does, retrying while the code location is still loading."""
    params = {"selector": {"repositoryLocationName": "dlt_platform", "repositoryName": "__repository__",
                           "jobName": "__ASSET_JOB", "assetSelection": [{"path": ASSET_KEY}]},
              "runConfigData": {}, "executionMetadata": {"tags": [{"key": "bench", "value": "image"}]}}
    deadline, answer = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(f"{container.url}/dagster/graphql", timeout=30,
                                json={"query": LAUNCH_RUN, "variables": {"executionParams": params}}).json()
        except (httpx.HTTPError, ValueError):
            answer = None
        if answer and answer.get("data", {}).get("launchRun", {}).get("__typename") == "LaunchRunSuccess":
            return
        time.sleep(0.1)
    raise ImageError(f"the run was not launched within {timeout:.0f} s: {answer}")


def cold_start(image: str, kv: KVApiServer) -> tuple[float, float]:
    kv.state.requests.clear()
    container = ImageContainer(image=image, env={
        "DLT_PLATFORM_ALLOW_EMBEDDED": "1",
        # The run in this container (no Worker to start a run container of its own).
        "DLT_PLATFORM_RUN_CONTAINERS": "0",
        "DLT_PLATFORM_DESTINATION": "duckdb",
        "DLT_PLATFORM_KV_TRANSPORT": "rest",
        "CLOUDFLARE_API_BASE_URL": kv.base_url,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
        "CLOUDFLARE_API_TOKEN": API_TOKEN,
    })
    try:
        container.start()
        answering = container.wait_until_answering()
        launch_when_loaded(container)
        deadline = time.monotonic() + 180
        while not kv.state.requests:
            if time.monotonic() > deadline:
                raise ImageError(f"the run made no request within 180 s:\n{container.logs()[-4000:]}")
            time.sleep(0.02)
        return answering, time.monotonic() - container.started_at
    finally:
        container.remove()


def measure(images: list[str], starts: int, kv: KVApiServer) -> dict[str, dict]:
    """The images' starts taken in turn, so a busy moment of the machine weighs on each alike."""
    timings: dict[str, list[tuple[float, float]]] = {image: [] for image in images}
    for _ in range(starts):
        for image in images:
            timings[image].append(cold_start(image, kv))
    return {image: {"size": image_size(image), "answering": statistics.median(t[0] for t in times),
                    "first_request": statistics.median(t[1] for t in times), "all": times}
            for image, times in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--compare", help="a second image to measure the same way (e.g. dlt-dagster:before)")
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    state = KVApiState(ACCOUNT_ID, API_TOKEN)
    namespace = state.add_namespace(NAMESPACE_ID, NAMESPACE_TITLE)
    for n in range(100):
        namespace.put(f"order:{n:04d}", f'{{"id": {n}, "total": {n * 3}}}')
    print(f"{'image':<28} {'size':>9} {'start -> Dagster answers':>26} {'start -> run first request':>28}")
    print(f"{'today (before issue 27)':<28} {TODAY['size']:>9}   {TODAY['answering']:>22.1f} s "
          f"{TODAY['first_request']:>26.1f} s")
    with KVApiServer(state) as kv:
        results = measure([args.image] + ([args.compare] if args.compare else []), args.starts, kv)
        for image, result in results.items():
            print(f"{image:<28} {result['size'] / 1e9:>7.2f} GB   {result['answering']:>22.1f} s "
                  f"{result['first_request']:>26.1f} s   (each start: "
                  + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in result["all"]) + ")")


if __name__ == "__main__":
    main()
