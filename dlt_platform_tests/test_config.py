import json
from pathlib import Path

import pytest

from dlt_platform.config import (
    DefinitionError,
    load_sources_file,
    parse_definition,
    parse_sources_document,
    render_json_schema,
)
from dlt_platform.settings import PROJECT_ROOT, Settings, SettingsError

from .conftest import make_definition

CONFIG = PROJECT_ROOT / "config"


def test_sample_sources_are_the_original_platforms_three_the_local_sample_api_and_a_webhook_feed():
    definitions = {d.source_id: d for d in load_sources_file(CONFIG / "sources.json")}
    assert set(definitions) == {"cloudflare_kv_orders", "cloudflare_kv_leads", "cloudflare_kv_vendors",
                                "sample_api_issues", "github_events", "r2_edge_logs",
                                "d1_sample_app"}
    assert definitions["sample_api_issues"].extract.client.base_url == "http://127.0.0.1:8790"
    orders, leads, vendors = (definitions[k] for k in ("cloudflare_kv_orders", "cloudflare_kv_leads",
                                                        "cloudflare_kv_vendors"))
    assert orders.destination.write_disposition == "replace" and orders.staging.raw_snapshot
    assert leads.destination.write_disposition == "merge" and leads.extract.incremental.key_prefix.startswith("lead:")
    assert not vendors.enabled and vendors.destination.table == "vendor_kv"
    github = definitions["github_events"]
    # The local stack generates this Worker var (dlt_platform/local/stack.py) and the sender signs with it.
    assert github.source_type == "webhook" and github.extract.signature.secret_names == ["LOCAL_WEBHOOK_SECRET"]


def test_example_file_documents_a_valid_definition_with_every_field():
    document = json.loads((CONFIG / "sources.example.json").read_text())
    definition, *other_examples = parse_sources_document(document)
    fields = set(document["sources"][0]) | {f"extract.{k}" for k in document["sources"][0]["extract"]}
    assert {"schedule", "freshness_hours", "owners", "tags", "staging", "schema_contract", "extract.incremental",
            "extract.transport", "extract.prefix"} <= fields
    assert definition.extract.incremental is not None
    assert [(d.source_id, d.source_type) for d in other_examples] == [
        ("github_issues", "rest_api"), ("stripe_charges", "rest_api"), ("edge_logs", "r2_files"),
        ("dlt_platform_ledger", "d1")]


def test_the_rest_api_examples_become_dlt_sources_without_their_secrets(tmp_path):
    """Shaped like GitHub's issues (Link headers, `since`) and Stripe's charges (starting_after cursor, has_more,
    created[gte]): dlt accepts them as they are written."""
    from dlt_platform.settings import Settings
    from dlt_platform.source_types.rest_api.source import rest_api_source

    document = json.loads((CONFIG / "sources.example.json").read_text())
    github, stripe = parse_sources_document(document)[1:3]
    settings = Settings(data_dir=tmp_path, destination_override="duckdb")
    assert set(rest_api_source(github, settings, describe_only=True).selected_resources) == {"issues", "issue_comments"}
    charges = rest_api_source(stripe, settings, describe_only=True).resources["charges"]
    assert charges.write_disposition == "merge" and charges.incremental is not None


def test_the_r2_files_example_becomes_a_dlt_source_with_a_cursor_per_table(tmp_path):
    from dlt_platform.settings import Settings
    from dlt_platform.source_types.r2_files.source import r2_files_source

    document = json.loads((CONFIG / "sources.example.json").read_text())
    [edge_logs] = [d for d in parse_sources_document(document) if d.source_type == "r2_files"]
    source = r2_files_source(edge_logs, Settings(data_dir=tmp_path, destination_override="duckdb"), describe_only=True)
    assert set(source.selected_resources) == {"http_requests", "orders"}
    assert source.resources["orders"].write_disposition == "merge"


def test_committed_json_schema_is_generated_from_the_model():
    assert (CONFIG / "source.schema.json").read_text() == render_json_schema(), "run `dlt-platform schema`"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"source_id": "Orders"}, "source_id"),
        ({"source_type": "ftp"}, "source_type"),
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"destination": {"write_disposition": "upsert"}}, "destination.write_disposition"),
        ({"destination": {"table": "orders-kv"}}, "destination.table"),
        ({"extract": {"surprise": True}}, "extract.surprise"),
        ({"extract": {"incremental": {"key_prefix": "lead:", "start": "2026-01-01"}}}, "extract.incremental.key_prefix"),
        ({"staging": {"raw_snapshot": True}}, "staging"),
        ({"unknown_top_level": 1}, "unknown_top_level"),
    ],
)
def test_bad_definitions_are_rejected_naming_the_field(overrides, field):
    with pytest.raises(DefinitionError) as error:
        make_definition(**overrides)
    assert str(error.value).startswith(field) or f"; {field}" in str(error.value), str(error.value)


def test_errors_in_a_sources_file_name_the_entry_and_duplicates(tmp_path: Path):
    good = make_definition().model_dump(mode="json")
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"sources": [good, good, {**good, "source_id": "x", "enabled": "maybe"}]}))
    with pytest.raises(DefinitionError) as error:
        load_sources_file(path)
    message = str(error.value)
    assert "sources[2].enabled" in message and "sources[1].source_id: duplicate 'test_orders'" in message
    path.write_text("{not json")
    with pytest.raises(DefinitionError, match="invalid JSON at line 1"):
        load_sources_file(path)


def test_environment_overrides(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("DLT_PLATFORM_CONFIG", str(tmp_path / "other.json"))
    monkeypatch.setenv("DLT_PLATFORM_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("DLT_PLATFORM_DESTINATION", "duckdb")
    settings = Settings.from_env()
    assert settings.config_path == tmp_path / "other.json" and settings.duckdb_path == tmp_path / "d" / "warehouse.duckdb"
    assert settings.destination_type(make_definition(destination={"type": "bigquery"})) == "duckdb"
    monkeypatch.setenv("DLT_PLATFORM_DESTINATION", "snowflake")
    with pytest.raises(SettingsError, match="DLT_PLATFORM_DESTINATION"):
        Settings.from_env()


def test_secrets_stay_out_of_settings_repr():
    settings = Settings(cloudflare_api_token="very-secret", internal_token="also-secret")
    assert "very-secret" not in repr(settings) and "also-secret" not in repr(settings)


def test_explicit_keys_and_incremental_windows_exclude_each_other():
    with pytest.raises(DefinitionError, match="extract"):
        parse_definition({
            **make_definition().model_dump(mode="json"),
            "extract": {"namespace_id": "n", "namespace_title": "T", "keys": ["a"],
                        "incremental": {"key_prefix": "lead:{date:%Y%m%d}", "start": "2026-01-01"}},
        })


def test_definitions_survive_the_dump_the_worker_and_dagster_receive():
    """The stack syncs `model_dump(mode="json")` to the Worker and Dagster's run workers rebuild from it: what a
    definition dumps must parse again to the same definition (rest_api's endpoint body is dumped as `json`)."""
    document = json.loads((CONFIG / "sources.example.json").read_text())
    for definition in [*load_sources_file(CONFIG / "sources.json"), *parse_sources_document(document)]:
        assert parse_definition(definition.model_dump(mode="json")) == definition
