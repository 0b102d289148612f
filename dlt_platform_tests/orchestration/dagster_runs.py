"""Runs of the sample sources' assets in the orchestration tests: their asset keys, a run launched the way the
webserver and the run queue do, and what a materialization recorded. (The `instance` and `workspace` fixtures
these take are in conftest.py.)"""

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.run_coordinator import SubmitRunContext

ORDERS = dg.AssetKey(["source_cloudflare", "orders_kv"])
LEADS = dg.AssetKey(["source_cloudflare", "leads_kv"])
VENDORS = dg.AssetKey(["source_cloudflare", "vendor_kv"])


def launch(instance, workspace, key: dg.AssetKey, tags: dict, run_config: dict | None = None) -> dg.DagsterRun:
    """Create, enqueue and launch a run of one asset the way the webserver and the run queue daemon do."""
    location = workspace.get_code_location(next(iter(workspace.get_code_location_entries())))
    remote_job = next(iter(location.get_repositories().values())).get_full_job("__ASSET_JOB")
    job = ReconstructableJob(ReconstructableRepository.for_module("dlt_platform.definitions", "defs"),
                             "__ASSET_JOB").get_subset(asset_selection={key})
    run = instance.create_run_for_job(job_def=job.get_definition(), run_config=run_config or {}, tags=tags,
                                      asset_selection=frozenset({key}), job_code_origin=job.get_python_origin(),
                                      remote_job_origin=remote_job.get_remote_origin())
    instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=workspace))
    instance.launch_run(run.run_id, workspace=workspace)
    return instance.get_run_by_id(run.run_id)


def asset_job(definitions: dg.Definitions) -> dg.JobDefinition:
    return definitions.get_repository_def().get_job("__ASSET_JOB")


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    event = instance.get_latest_materialization_event(key)
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}
