"""BigQuery specifics, against the emulator: the column types and table options dlt sends, the CLI configured
only by environment variables, each documented form of Google credentials (a real token fetched from a loopback
stand-in of Google's token endpoint, google_token_endpoint.py), and credentials that cannot work refused in seconds."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.cloud import bigquery

from dlt_platform.bigquery import jsonl_for_json_tables
from dlt_platform.loads import run_load
from dlt_platform.local.loopback import free_port
from dlt_platform.settings import PROJECT_ROOT

from .conftest import ACCOUNT_ID, API_TOKEN, make_definition
from .google_token_endpoint import GoogleTokenEndpoint
from .test_loads import ORDER, put

# What the README promises for the audit columns.
AUDIT_COLUMN_TYPES = {
    "cf_kv_key": "STRING",
    "cf_kv_namespace_id": "STRING",
    "cf_kv_namespace_title": "STRING",
    "cf_kv_metadata": "JSON",
    "cf_kv_expiration": "INT64",
    "cf_kv_fetched_at": "TIMESTAMP",
    "cf_kv_value_is_json": "BOOL",
    "cf_kv_value_raw": "STRING",
    "cf_kv_value_encoding": "STRING",
}


@pytest.fixture
def sent_sql(monkeypatch) -> list[str]:
    """Every SQL statement the BigQuery client sends (dlt's DDL included)."""
    statements: list[str] = []

    def recorder(original):
        def recording(self, query, *args, **kwargs):
            statements.append(query)
            return original(self, query, *args, **kwargs)
        return recording

    for method in ("query", "query_and_wait"):  # dlt's DDL goes through the DB-API cursor's query_and_wait
        monkeypatch.setattr(bigquery.Client, method, recorder(getattr(bigquery.Client, method)))
    return statements


def create_table_sql(statements: list[str], dataset: str, table: str) -> str:
    """The one CREATE TABLE of dataset.table, out of dlt's DDL scripts."""
    pattern = rf"CREATE TABLE\s+\S*`{dataset}`\.`{table}`\s*\(.*?(?:;|$)"
    (sql,) = {match for statement in statements for match in re.findall(pattern, statement, re.S)}
    return sql


def test_audit_columns_get_their_bigquery_types_and_the_table_options_reach_create_table(
        kv_state, bigquery_warehouse, sent_sql):
    definition = make_definition(destination={
        "type": "bigquery", "write_disposition": "merge", "location": "EU",
        "partition_by": {"column": "cf_kv_fetched_at", "granularity": "day"}, "cluster_by": ["cf_kv_key"]})
    put(kv_state, "order:o1", ORDER, {"schema": 2}, 1_900_000_000)
    run_load(definition, bigquery_warehouse.settings)
    ddl = create_table_sql(sent_sql, "source_test", "orders_kv")
    declared = dict(re.findall(r"`(\w+)` (\w+)", ddl))
    assert {name: declared[name] for name in AUDIT_COLUMN_TYPES} == AUDIT_COLUMN_TYPES
    assert re.search(r"`cf_kv_key` STRING\s+NOT NULL", ddl) and not re.search(r"`cf_kv_metadata` JSON\s+NOT NULL", ddl)
    # bqemulator 1.4.0 keeps neither partitioning nor clustering in its table metadata: assert on what dlt sent
    # (and the emulator accepted: the load succeeded).
    assert "PARTITION BY TIMESTAMP_TRUNC(`cf_kv_fetched_at`, DAY)" in ddl
    assert re.search(r"CLUSTER BY `cf_kv_key`", ddl)
    # What the emulator reports (it shows JSON as STRING) and what a JSON function reads back.
    reported = bigquery_warehouse.column_types("source_test", "orders_kv")
    assert {name: reported[name] for name in ("cf_kv_expiration", "cf_kv_fetched_at", "cf_kv_value_is_json")} == {
        "cf_kv_expiration": "INTEGER", "cf_kv_fetched_at": "TIMESTAMP", "cf_kv_value_is_json": "BOOLEAN"}
    assert bigquery_warehouse.query("select json_value(cf_kv_metadata, '$.schema'), total from source_test.orders_kv"
                                    ) == [("2", 12.5)]
    assert bigquery_warehouse.client.get_dataset("source_test").location == "EU"


def test_tables_with_a_json_column_load_from_json_lines_and_others_from_parquet():
    json_table = {"columns": {"cf_kv_metadata": {"name": "cf_kv_metadata", "data_type": "json"}}}
    plain_table = {"columns": {"sku": {"name": "sku", "data_type": "text"}}}
    assert jsonl_for_json_tables("parquet", ["jsonl", "parquet"], table_schema=json_table)[0] == "jsonl"
    assert jsonl_for_json_tables("parquet", ["jsonl", "parquet"], table_schema=plain_table)[0] == "parquet"


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "dlt-platform"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)


@pytest.fixture
def cli_env(tmp_path, kv_api) -> dict[str, str]:
    """A clean environment for the CLI: the loopback KV API, a bigquery definition, no Google credentials."""
    definition = make_definition(source_id="bq_orders", destination={"type": "bigquery", "write_disposition": "merge"})
    (tmp_path / "sources.json").write_text(json.dumps({"sources": [definition.model_dump(mode="json")]}))
    keep = {name: value for name, value in os.environ.items()
            if not name.startswith(("GOOGLE_", "DESTINATION__", "BIGQUERY_", "DLT_PLATFORM_", "CLOUDFLARE_"))}
    return {**keep, "DLT_PLATFORM_CONFIG": str(tmp_path / "sources.json"), "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
            "CLOUDFLARE_API_BASE_URL": kv_api.base_url, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
            "CLOUDFLARE_API_TOKEN": API_TOKEN, "NO_GCE_CHECK": "true", "COLUMNS": "500"}  # no wrapping: one line is one line


def test_the_cli_loads_a_bigquery_source_into_the_emulator_twice_with_one_row_per_key(
        kv_state, cli_env, bigquery_warehouse):
    emulator = bigquery_warehouse.emulator
    env = {**cli_env, "BIGQUERY_EMULATOR_HOST": emulator.url, "GOOGLE_CLOUD_PROJECT": emulator.project_id}
    put(kv_state, "order:o1", ORDER)
    put(kv_state, "order:o2", {**ORDER, "order_id": "o2"})
    assert cli("load", "--source-id", "bq_orders", env=env).returncode == 0
    put(kv_state, "order:o2", {**ORDER, "order_id": "o2", "total": 1.0})
    second = cli("load", "--source-id", "bq_orders", env=env)
    assert second.returncode == 0, second.stderr
    assert bigquery_warehouse.query("select cf_kv_key, total from source_test.orders_kv order by 1") == [
        ("order:o1", 12.5), ("order:o2", 1.0)]
    assert bigquery_warehouse.query("select count(*) from source_test.orders_kv__items") == [(4,)]


@pytest.fixture
def token_endpoint(tmp_path):
    with GoogleTokenEndpoint(tmp_path / "token-endpoint") as endpoint:
        yield endpoint


def credential_env(form: str, key: dict, tmp_path: Path, endpoint: GoogleTokenEndpoint) -> dict[str, str]:
    """One documented form of Google credentials for `key`, as an operator sets it."""
    if form == "key JSON":
        return {"DESTINATION__BIGQUERY__CREDENTIALS": json.dumps(key, indent=2)}  # multi-line, as downloaded
    if form == "key fields":
        # These carry no token_uri: dlt asks Google's own address, which the endpoint answers as an HTTPS proxy.
        return {"DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID": key["project_id"],
                "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL": key["client_email"],
                "DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY": key["private_key"], **endpoint.proxy_env()}
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(path)}


@pytest.mark.parametrize("form", ["key JSON", "key fields", "key file"])
def test_each_documented_credential_form_loads_into_the_emulator_with_a_token_and_the_key_s_project(
        form, kv_state, cli_env, bigquery_warehouse, token_endpoint, tmp_path):
    emulator = bigquery_warehouse.emulator
    # The key's project is the only project given (no GOOGLE_CLOUD_PROJECT): the load must take it from the key.
    key = token_endpoint.new_key(emulator.project_id)
    env = {**cli_env, "BIGQUERY_EMULATOR_HOST": emulator.url, **credential_env(form, key, tmp_path, token_endpoint)}
    put(kv_state, "order:o1", ORDER)
    result = cli("load", "--source-id", "bq_orders", env=env)
    assert result.returncode == 0, result.stderr
    assert bigquery_warehouse.query("select cf_kv_key, total from source_test.orders_kv") == [("order:o1", 12.5)]
    # Tokens for this key, with the BigQuery client's scope: one for the check before the load, more for dlt's
    # clients (the emulator host changed only the endpoint; the credentials were still used).
    grants = [grant for grant in token_endpoint.grants if grant.client_email == key["client_email"]]
    assert len(grants) >= 2 and {grant.scope for grant in grants} == set(bigquery.Client.SCOPE), grants
    assert {grant.via for grant in grants} == {"https" if form == "key fields" else "http"}
    assert token_endpoint.refusals == []


def credential_cases(tmp_path: Path, endpoint: GoogleTokenEndpoint, emulator_url: str) -> list[tuple[dict, str]]:
    unreachable = tmp_path / "unreachable.json"  # a key whose token endpoint does not answer (nothing listens)
    unreachable_key = endpoint.new_key("some-project", token_uri=f"http://127.0.0.1:{free_port()}/token")
    unreachable.write_text(json.dumps(unreachable_key))
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"type": "service_account", "client_email": ')
    no_key = tmp_path / "no_key.json"
    no_key.write_text(json.dumps({**endpoint.new_key("some-project"), "private_key": ""}))
    # A key of a known account signed with another private key: the endpoint refuses the signature.
    wrong_key = json.dumps({**endpoint.new_key("some-project", "signer"),
                            "private_key": endpoint.new_key("some-project", "other", registered=False)["private_key"]})
    fields = credential_env("key fields", endpoint.new_key("some-project"), tmp_path, endpoint)
    return [
        ({}, "BigQuery credentials missing: set DESTINATION__BIGQUERY__CREDENTIALS to the service account key JSON"),
        ({"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "absent.json")},
         f"GOOGLE_APPLICATION_CREDENTIALS: no file at {tmp_path / 'absent.json'}"),
        ({"GOOGLE_APPLICATION_CREDENTIALS": str(malformed)}, f"{malformed} is not a JSON key file"),
        ({"GOOGLE_APPLICATION_CREDENTIALS": str(no_key)}, f"{no_key} lacks private_key"),
        ({"GOOGLE_APPLICATION_CREDENTIALS": str(unreachable)}, "no token from http://127.0.0.1:"),
        ({"BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9"}, "BIGQUERY_EMULATOR_HOST is set but no project id"),
        ({"BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}", "GOOGLE_CLOUD_PROJECT": "p"},
         "BIGQUERY_EMULATOR_HOST: nothing answers at http://127.0.0.1:"),
        # The key JSON and the key fields, as deploy.md and the README give them.
        ({"DESTINATION__BIGQUERY__CREDENTIALS": wrong_key},
         "BigQuery credentials from DESTINATION__BIGQUERY__CREDENTIALS: http://127.0.0.1:"),
        ({"DESTINATION__BIGQUERY__CREDENTIALS": wrong_key, "BIGQUERY_EMULATOR_HOST": emulator_url},
         "refused them (invalid_grant: Invalid JWT Signature.)"),  # the emulator changes only the endpoint
        ({"DESTINATION__BIGQUERY__CREDENTIALS": json.dumps(unreachable_key)},
         "BigQuery credentials from DESTINATION__BIGQUERY__CREDENTIALS: no token from http://127.0.0.1:"),
        ({"DESTINATION__BIGQUERY__CREDENTIALS": '{"type": "service_account", "client_email": '},
         "DESTINATION__BIGQUERY__CREDENTIALS: not a service account key JSON"),
        ({"DESTINATION__BIGQUERY__CREDENTIALS": json.dumps({**endpoint.new_key("some-project"), "client_email": ""})},
         "DESTINATION__BIGQUERY__CREDENTIALS lacks client_email"),
        ({name: value for name, value in fields.items() if not name.endswith("PRIVATE_KEY")},
         "BigQuery credentials incomplete: set DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY"),
        ({**fields, "DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnot a key"},
         "DESTINATION__BIGQUERY__CREDENTIALS__*: unreadable DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY"),
    ]


def test_unusable_credentials_end_the_load_within_seconds_with_one_line_and_leave_nothing_pending(
        kv_state, cli_env, tmp_path, token_endpoint, bigquery_warehouse):
    put(kv_state, "order:o1", ORDER)
    cases = credential_cases(tmp_path, token_endpoint, bigquery_warehouse.emulator.url)

    def load_with(case: int) -> tuple | None:
        """The case's load, in a data folder of its own (the cases run two at a time: four at once on two busy CI
        cores once took a case past 30 s); what went wrong, if any."""
        extra, expected = cases[case]
        started = time.monotonic()
        env = {**cli_env, **extra, "DLT_PLATFORM_DATA_DIR": str(tmp_path / f"data-{case}")}
        result = cli("load", "--source-id", "bq_orders", env=env, timeout=60)
        elapsed = time.monotonic() - started
        lines = result.stderr.strip().splitlines()
        if not (result.returncode == 1 and len(lines) == 1 and expected in lines[0] and elapsed < 30
                and "PRIVATE KEY" not in result.stderr and "not a key" not in result.stderr):
            return sorted(extra), expected, f"{elapsed:.1f} s", result.stderr[-300:]
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        unexpected = [outcome for outcome in pool.map(load_with, range(len(cases))) if outcome]
    assert not unexpected, "\n".join(map(str, unexpected))  # every case that went wrong, not only the first
    # Refused before extracting: no load package waits in the pipeline for the next run, nothing reached BigQuery.
    for case in range(len(cases)):
        pipeline_dir = tmp_path / f"data-{case}" / "pipelines" / "bq_orders"
        assert not list(pipeline_dir.glob("**/normalized/*")) and not list(pipeline_dir.glob("**/new/*"))
    assert list(bigquery_warehouse.client.list_datasets()) == []
    assert token_endpoint.grants == []  # no refused key was given a token


@pytest.mark.parametrize("destination, message", [
    ({"partition_by": {"column": "cf_kv_fetched_at", "granularity": "week"}},
     "destination.partition_by.granularity: Input should be 'hour', 'day', 'month' or 'year'"),
    ({"cluster_by": ["a", "b", "c", "d", "e"]}, "destination.cluster_by: List should have at most 4 items"),
    ({"cluster_by": ["a", "a"]}, "destination.cluster_by: cluster columns must be distinct"),
    ({"location": "EU; DROP"}, "destination.location: String should match pattern"),
])
def test_bigquery_table_options_are_validated_naming_the_field(destination, message):
    from dlt_platform.config import DefinitionError

    with pytest.raises(DefinitionError, match=re.escape(message)):
        make_definition(destination=destination)


def test_json_lines_load_files_are_gzipped_for_google_and_plain_for_the_emulator(tmp_path, settings, kv_state,
                                                                                monkeypatch):
    from dlt_platform.loads import build_pipeline, build_source

    put(kv_state, "order:o1", ORDER)
    definition = make_definition(destination={"type": "bigquery"})
    google = dataclasses.replace(settings, destination_override=None, data_dir=tmp_path / "google")
    emulated = dataclasses.replace(google, data_dir=tmp_path / "emulated", bigquery_emulator_host="http://127.0.0.1:9",
                                   bigquery_project_id="p")
    # As loads.py sets it; the emulator's destination switches it on. Both restored after the test.
    monkeypatch.setenv("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "false")
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    suffixes = {}
    for name, where in (("google", google), ("emulator", emulated)):
        pipeline = build_pipeline(definition, where)
        pipeline.extract(build_source(definition, where))  # extract + normalize need no connection
        intermediate = [p.name for p in (where.data_dir / "pipelines").rglob("normalize/extracted/*/new_jobs/*")]
        # Files dlt writes locally are never gzipped; the root table's JSON lines (written by the KV source for dlt
        # to import, json_lines.py) are written once, already in their load file's form.
        assert intermediate and not [n for n in intermediate if n.endswith(".gz") and not n.startswith("orders_kv.")]
        pipeline.normalize()
        suffixes[name] = {p.name.split(".", 1)[0]: "".join(p.suffixes[-2:]) for p in
                          (where.data_dir / "pipelines").rglob("load/normalized/*/new_jobs/*") if "_dlt" not in p.name}
    assert suffixes["google"]["orders_kv"].endswith(".jsonl.gz") and suffixes["emulator"]["orders_kv"].endswith(".jsonl")
