"""`from_snapshot` in run config, as the launchpad (through the Worker's Dagster proxy) sends it: only a snapshot
of the source under its own prefix is replayed; a URL fails the run without being fetched."""

import dagster as dg

from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform_tests.orchestration.conftest import SAMPLE_COUNTS, read_table
from dlt_platform_tests.snapshot_fixtures import snapshot_http_server, write_snapshot  # noqa: F401 - fixture

ORDERS = dg.AssetKey(["source_cloudflare", "orders_kv"])
SOURCE_ID = "cloudflare_kv_orders"


def test_run_config_from_snapshot_replays_only_the_sources_own_snapshots(settings, sample_definitions,
                                                                        snapshot_http_server):  # noqa: F811
    job = build_platform_definitions(sample_definitions, settings).get_repository_def().get_job(
        "__ASSET_JOB").get_subset(asset_selection={ORDERS})
    instance = dg.DagsterInstance.ephemeral()
    assert job.execute_in_process(instance=instance).success
    snapshot_event = instance.get_latest_materialization_event(dg.AssetKey(["raw_staging", "cloudflare_kv", "orders"]))
    snapshot_url = snapshot_event.asset_materialization.metadata["snapshot_url"].value
    leads = write_snapshot(settings.data_dir / "raw_staging" / "cloudflare_kv" / "leads" / "2026-11-26" / "1.ndjson.gz",
                           ["planted"])

    for value in (f"{snapshot_http_server.url}/cloudflare_kv/orders/2026-11-26/1.ndjson.gz",
                  str(leads), "cloudflare_kv/orders/../leads/2026-11-26/1.ndjson.gz"):
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                        run_config={"ops": {SOURCE_ID: {"config": {"from_snapshot": value}}}})
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
        assert failure.user_failure_data.description.startswith("from_snapshot:"), failure
    assert snapshot_http_server.requests == []
    assert read_table(settings, "source_cloudflare", "orders_kv", "count(*), count(distinct cf_kv_key)") == [
        (SAMPLE_COUNTS["ORDERS_KV"], SAMPLE_COUNTS["ORDERS_KV"])]

    key = snapshot_url.removeprefix(f"{settings.snapshot_root}/")
    replay = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                    run_config={"ops": {SOURCE_ID: {"config": {"from_snapshot": key}}}})
    assert replay.success
    assert read_table(settings, "source_cloudflare", "orders_kv") == [(SAMPLE_COUNTS["ORDERS_KV"],)]
