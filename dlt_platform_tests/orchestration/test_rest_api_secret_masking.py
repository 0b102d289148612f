"""A rest_api source's secret values reach no Dagster record: a query-string API key on a connection error is
masked in the step failure, in every event of the run's event log and in dlt's trace of the run."""

import json
import socket
from urllib.parse import quote, quote_plus

import dagster as dg

from dlt_platform.orchestration.code_location import build_code_location
from dlt_platform_tests.rest_api_fixtures import rest_definition

KEY_ENV = "PROBE_QUERY_KEY"
KEY = "k3y/with+plus=and%sign-0a9b"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_query_key_on_a_connection_error_reaches_no_dagster_record(settings, monkeypatch):
    host = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("DLT_SOURCE_SECRETS", json.dumps({KEY_ENV: [host]}))
    monkeypatch.setenv("DLT_PLATFORM_ALLOW_PRIVATE_HOSTS", host)
    definition = rest_definition({
        "client": {"base_url": f"http://{host}",
                   "auth": {"type": "api_key", "name": "sig", "location": "query", "api_key": {"env": KEY_ENV}}},
        "resources": [{"name": "issues", "endpoint": {"path": "x"}}],
        "http": {"max_attempts": 2, "backoff_seconds": 0.05, "max_retry_delay_seconds": 1},
    }, source_id="probe_masking")
    location, problems = build_code_location([definition], settings)
    assert problems == []
    instance = dg.DagsterInstance.ephemeral()

    result = location.get_repository_def().get_job("load_probe_masking").execute_in_process(
        instance=instance, raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert f"GET http://{host}/x?sig=*** failed after 2 attempts" in failure.step_failure_data.error.message
    forms = {KEY, quote(KEY, safe=""), quote_plus(KEY), quote(KEY)}
    stored = "\n".join(dg.serialize_value(record) for record in instance.all_logs(result.run_id))
    assert "sig=***" in stored and not [form for form in forms if form in stored]
    traces = list((settings.data_dir / "pipelines").rglob("trace.pickle"))
    assert traces and not [path for path in traces if any(form.encode() in path.read_bytes() for form in forms)]
