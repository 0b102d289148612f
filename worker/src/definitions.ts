// Generated from config/source.schema.json by `npm run definition-types` (worker/scripts/definition_types.mjs); do not edit.

export type SourceDefinition =
  KVSourceDefinition | WebhookSourceDefinition | RestApiSourceDefinition | D1SourceDefinition | R2FilesSourceDefinition;

/**
 * A Cloudflare Workers KV namespace, listed (or read key by key) and loaded one row per key.
 */
export interface KVSourceDefinition {
  description?: string | null;
  destination: Destination;
  enabled?: boolean;
  extract: KVExtract;
  /**
   * Data older than this is stale; default derived from the schedule.
   */
  freshness_hours?: number | null;
  /**
   * @maxItems 20
   */
  owners?: string[];
  /**
   * Size of the source's run containers (default: instance_type standard-1).
   */
  runner?: Runner | null;
  schedule?: string | null;
  /**
   * dlt's schema contract (https://dlthub.com/docs/general-usage/schema-contracts): one mode for tables, columns and data types, or each on its own. `freeze` fails a load that would add what it names (a new table, a new column of an existing table, a new data type of an existing column) and loads nothing; `discard_row` drops such rows, `discard_value` such values, and the run counts the rows it dropped. A table's first load always adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve.
   */
  schema_contract?: ("evolve" | "freeze" | "discard_row" | "discard_value") | SchemaContract | null;
  /**
   * Stable id; also the dlt pipeline name.
   */
  source_id: string;
  source_type: "cloudflare_kv";
  staging?: Staging;
  tags?: {
    [k: string]: string | undefined;
  };
}
export interface Destination {
  /**
   * BigQuery clustering columns, in order (at most 4), e.g. ['cf_kv_key'].
   */
  cluster_by?: string[] | null;
  /**
   * Warehouse dataset (BigQuery dataset, DuckDB schema).
   */
  dataset: string;
  /**
   * Load jobs per table per UTC day this source's tables may use in BigQuery (the quota is 1500, failed jobs included; default 1000). Webhook runs are spaced to stay under it, a schedule firing more often is refused, and a run taking a table past 80% of it raises an alert.
   */
  load_job_budget?: number | null;
  /**
   * BigQuery location of the dataset, e.g. 'EU', 'US', 'europe-west3' (default US).
   */
  location?: string | null;
  /**
   * BigQuery time partitioning of the table.
   */
  partition_by?: TimePartitioning | null;
  /**
   * Table the records land in.
   */
  table: string;
  /**
   * Warehouse; DLT_PLATFORM_DESTINATION overrides it for local work.
   */
  type?: "bigquery" | "duckdb";
  /**
   * replace: snapshot; merge: upsert on cf_kv_key; append: keep every load.
   */
  write_disposition?: "replace" | "merge" | "append";
}
/**
 * BigQuery time partitioning of the table: one partition per day (hour, month, year) of a TIMESTAMP column.
 */
export interface TimePartitioning {
  /**
   * A TIMESTAMP column, e.g. cf_kv_fetched_at.
   */
  column: string;
  /**
   * Width of one partition.
   */
  granularity?: "hour" | "day" | "month" | "year";
}
export interface KVExtract {
  incremental?: Incremental | null;
  /**
   * Explicit keys to load instead of a listing (full backfills in batches).
   */
  keys?: string[] | null;
  /**
   * Cloudflare KV namespace id (REST transport).
   */
  namespace_id: string;
  /**
   * Namespace title; the Worker's KV binding name.
   */
  namespace_title: string;
  /**
   * Only keys starting with this prefix.
   */
  prefix?: string | null;
  /**
   * rest: Cloudflare API with an API token; worker: the orchestrator's /internal/kv pages.
   */
  transport?: "rest" | "worker";
}
/**
 * Key-prefix windows: keys are date-prefixed, so a window is a prefix and a run lists only recent windows.
 */
export interface Incremental {
  enabled?: boolean;
  /**
   * Key prefix template with one {date:FORMAT} placeholder (strftime), e.g. 'lead:{date:%Y%m%d}'.
   */
  key_prefix: string;
  /**
   * How many windows back from now a normal run loads.
   */
  lookback?: number;
  /**
   * First window that exists (first Dagster partition).
   */
  start: string;
  /**
   * Width of one window (and of one Dagster partition).
   */
  step?: "day" | "hour";
}
/**
 * The run container each run of the source gets (docs/dagster.md, "Run containers").
 */
export interface Runner {
  /**
   * Cloudflare Containers instance type of the source's runs: lite (1/16 vCPU, 256 MiB), basic (1/4 vCPU, 1 GiB), standard-1 (1/2 vCPU, 4 GiB), standard-2 (1 vCPU, 6 GiB), standard-3 (2 vCPU, 8 GiB), standard-4 (4 vCPU, 12 GiB). Default standard-1.
   */
  instance_type?: "lite" | "basic" | "standard-1" | "standard-2" | "standard-3" | "standard-4";
}
/**
 * dlt's schema contract, entity by entity (TSchemaContractDict); an entity left out evolves.
 */
export interface SchemaContract {
  columns?: "evolve" | "freeze" | "discard_row" | "discard_value";
  data_type?: "evolve" | "freeze" | "discard_row" | "discard_value";
  tables?: "evolve" | "freeze" | "discard_row" | "discard_value";
}
export interface Staging {
  /**
   * Object key prefix of the snapshots, relative ('a/b', no '..' or leading '/'); required when raw_snapshot is true.
   */
  r2_prefix?: string | null;
  /**
   * Keep compressed NDJSON of every extraction in R2 (or the local folder).
   */
  raw_snapshot?: boolean;
}
/**
 * A webhook feed: deliveries verified and kept by the Worker, loaded in batches merged on the delivery id.
 */
export interface WebhookSourceDefinition {
  description?: string | null;
  destination: Destination;
  enabled?: boolean;
  extract: WebhookExtract;
  /**
   * Data older than this is stale; default derived from the schedule.
   */
  freshness_hours?: number | null;
  /**
   * @maxItems 20
   */
  owners?: string[];
  /**
   * Size of the source's run containers (default: instance_type standard-1).
   */
  runner?: Runner | null;
  schedule?: string | null;
  /**
   * dlt's schema contract (https://dlthub.com/docs/general-usage/schema-contracts): one mode for tables, columns and data types, or each on its own. `freeze` fails a load that would add what it names (a new table, a new column of an existing table, a new data type of an existing column) and loads nothing; `discard_row` drops such rows, `discard_value` such values, and the run counts the rows it dropped. A table's first load always adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve.
   */
  schema_contract?: ("evolve" | "freeze" | "discard_row" | "discard_value") | SchemaContract | null;
  /**
   * Stable id; also the dlt pipeline name.
   */
  source_id: string;
  source_type: "webhook";
  staging?: Staging;
  tags?: {
    [k: string]: string | undefined;
  };
}
export interface WebhookExtract {
  batch?: DeliveryBatch;
  /**
   * @minItems 1
   * @maxItems 10
   */
  content_types?: string[];
  /**
   * Where the delivery id is; default the preset's (X-GitHub-Delivery, the Stripe event id, svix-id).
   */
  delivery_id?: FieldLocation | null;
  /**
   * Where the event type is; default the preset's (X-GitHub-Event, Stripe's type, none).
   */
  event_type?: FieldLocation | null;
  max_body_bytes?: number;
  /**
   * Body objects nested deeper than this stay whole in JSON columns (native JSON in BigQuery), and deeper lists make no child tables. Default: 1 for the github preset, unbounded otherwise.
   */
  max_table_nesting?: number | null;
  signature: SignatureCheck;
  /**
   * Each event type's bodies in a table of their own, <table>__<event_type>, while <table> keeps one row per delivery (audit columns and raw body). Default: on for the github preset, off otherwise.
   */
  table_per_event_type?: boolean | null;
}
export interface DeliveryBatch {
  /**
   * A run starts once this many deliveries wait...
   */
  max_deliveries?: number;
  /**
   * ...or once the oldest waiting delivery is this old.
   */
  max_wait_seconds?: number;
}
/**
 * Where a value is found in a delivery: a request header or a field of the JSON body.
 */
export interface FieldLocation {
  header?: string | null;
  json_path?: string | null;
}
/**
 * How the Worker verifies a delivery. Presets follow each sender's documented scheme: github
 * (X-Hub-Signature-256), stripe (Stripe-Signature t=/v1=), svix (standard-webhooks svix-id/-timestamp/-signature);
 * hmac is a generic HMAC of the raw body (or of "timestamp.body" when timestamp_header is set).
 */
export interface SignatureCheck {
  /**
   * hmac: the hash function.
   */
  algorithm?: "sha1" | "sha256" | "sha512";
  /**
   * hmac: how the signature is written.
   */
  encoding?: "hex" | "base64";
  /**
   * hmac: the header carrying the signature.
   */
  header?: string | null;
  preset: "github" | "stripe" | "svix" | "hmac";
  /**
   * Worker secrets holding the signing key; two while a key is rotated (either one verifies).
   *
   * @minItems 1
   * @maxItems 2
   */
  secret_names: string[];
  /**
   * hmac: text before the signature in its header, e.g. 'sha256='.
   */
  signature_prefix?: string | null;
  /**
   * hmac: header with the send time (unix seconds), signed as '<timestamp>.<body>'.
   */
  timestamp_header?: string | null;
  /**
   * Signed timestamps older or newer than this are refused (stripe, svix, hmac with timestamp).
   */
  tolerance_seconds?: number;
}
/**
 * An HTTP API read through dlt's rest_api source: one table per resource, all loaded in one run.
 */
export interface RestApiSourceDefinition {
  description?: string | null;
  destination: WarehouseDestination;
  enabled?: boolean;
  extract: RestApiExtract;
  /**
   * Data older than this is stale; default derived from the schedule.
   */
  freshness_hours?: number | null;
  /**
   * @maxItems 20
   */
  owners?: string[];
  /**
   * Size of the source's run containers (default: instance_type standard-1).
   */
  runner?: Runner | null;
  schedule?: string | null;
  /**
   * dlt's schema contract (https://dlthub.com/docs/general-usage/schema-contracts): one mode for tables, columns and data types, or each on its own. `freeze` fails a load that would add what it names (a new table, a new column of an existing table, a new data type of an existing column) and loads nothing; `discard_row` drops such rows, `discard_value` such values, and the run counts the rows it dropped. A table's first load always adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve.
   */
  schema_contract?: ("evolve" | "freeze" | "discard_row" | "discard_value") | SchemaContract | null;
  /**
   * Stable id; also the dlt pipeline name.
   */
  source_id: string;
  source_type: "rest_api";
  staging?: Staging;
  tags?: {
    [k: string]: string | undefined;
  };
}
/**
 * Where a source's tables land; a source whose tables are named by its extract (rest_api) has no `table`.
 */
export interface WarehouseDestination {
  /**
   * BigQuery clustering columns, in order (at most 4), e.g. ['cf_kv_key'].
   */
  cluster_by?: string[] | null;
  /**
   * Warehouse dataset (BigQuery dataset, DuckDB schema).
   */
  dataset: string;
  /**
   * Load jobs per table per UTC day this source's tables may use in BigQuery (the quota is 1500, failed jobs included; default 1000). Webhook runs are spaced to stay under it, a schedule firing more often is refused, and a run taking a table past 80% of it raises an alert.
   */
  load_job_budget?: number | null;
  /**
   * BigQuery location of the dataset, e.g. 'EU', 'US', 'europe-west3' (default US).
   */
  location?: string | null;
  /**
   * BigQuery time partitioning of the table.
   */
  partition_by?: TimePartitioning | null;
  /**
   * Warehouse; DLT_PLATFORM_DESTINATION overrides it for local work.
   */
  type?: "bigquery" | "duckdb";
  /**
   * replace: snapshot; merge: upsert on cf_kv_key; append: keep every load.
   */
  write_disposition?: "replace" | "merge" | "append";
}
export interface RestApiExtract {
  client: RestClient;
  http?: HttpLimits;
  /**
   * Dagster time partitions over the incremental resources' cursors.
   */
  partitions?: RestPartitions | null;
  resource_defaults?: RestDefaults | null;
  /**
   * @minItems 1
   * @maxItems 50
   */
  resources: RestResource[];
}
export interface RestClient {
  auth?: {
    type: string;
  } | null;
  /**
   * https://api.example.com/v1; no credentials.
   */
  base_url: string;
  /**
   * Sent with every request; a value may be {"env": "NAME"}.
   */
  headers?: {
    [k: string]: string | EnvSecret | undefined;
  } | null;
  paginator?: {
    type: string;
  } | null;
}
/**
 * A secret read from the environment (the container's env, `.env` locally) when a run starts.
 */
export interface EnvSecret {
  /**
   * Environment variable holding the secret.
   */
  env: string;
}
/**
 * The platform's limits on top of dlt: a request budget per host and bounded retries.
 */
export interface HttpLimits {
  /**
   * Exponential back-off base (also after 'Retry-After: 0').
   */
  backoff_seconds?: number;
  /**
   * Attempts per request on 429, 5xx and connection errors.
   */
  max_attempts?: number;
  /**
   * Longest wait between attempts, Retry-After included.
   */
  max_retry_delay_seconds?: number;
  /**
   * At most this many requests per second to one host.
   */
  requests_per_second?: number | null;
  /**
   * At most this many requests to one host in any window_seconds (an API's quota).
   */
  requests_per_window?: number | null;
  window_seconds?: number;
}
/**
 * Time-window partitions of a rest_api source: a partition run reads each incremental resource from the
 * window's start to its end (dlt's initial_value/end_value: a backfill that leaves the cursors alone).
 */
export interface RestPartitions {
  /**
   * Windows a scheduled run reads, the one in progress included.
   */
  lookback?: number;
  /**
   * First window (first Dagster partition).
   */
  start: string;
  /**
   * Width of one window (one Dagster partition).
   */
  step?: "day" | "hour";
}
export interface RestDefaults {
  endpoint?: RestResourceEndpointDefaults | null;
  max_table_nesting?: number | null;
  primary_key?: string | string[] | null;
  write_disposition?: ("replace" | "merge" | "append") | null;
}
/**
 * What resource_defaults.endpoint may hold: everything but the path.
 */
export interface RestResourceEndpointDefaults {
  data_selector?: string | null;
  paginator?: {
    type: string;
  } | null;
  params?: {
    [k: string]: string | number | boolean | ResolveParam | undefined;
  } | null;
}
/**
 * A child resource's parameter taken from each item of its parent resource (dlt: `type: resolve`).
 */
export interface ResolveParam {
  field: string;
  /**
   * The parent resource's name.
   */
  resource: string;
  type: "resolve";
}
/**
 * One endpoint, one table (named after the resource).
 */
export interface RestResource {
  endpoint: RestEndpoint;
  /**
   * Fields of the parent item copied into each child row (_<parent>_<field>).
   */
  include_from_parent?: string[] | null;
  max_table_nesting?: number | null;
  /**
   * Resource name; also its table name.
   */
  name: string;
  primary_key?: string | string[] | null;
  /**
   * false: fetched only to feed child resources, not loaded.
   */
  selected?: boolean;
  write_disposition?: ("replace" | "merge" | "append") | null;
}
export interface RestEndpoint {
  /**
   * JSONPath of the items in a response; default: detected.
   */
  data_selector?: string | null;
  incremental?: RestIncremental | null;
  /**
   * JSON body of a POST request.
   */
  json?: {
    [k: string]: unknown | undefined;
  } | null;
  method?: "GET" | "POST";
  paginator?: {
    type: string;
  } | null;
  params?: {
    [k: string]: string | number | boolean | ResolveParam | undefined;
  } | null;
  /**
   * Relative to client.base_url; may use {resources.<parent>.<field>}.
   */
  path: string;
}
/**
 * dlt's incremental for an endpoint: the cursor field of the items and the parameter that sends its last
 * value, so a run asks only for what changed since the previous one.
 */
export interface RestIncremental {
  cursor_path: string;
  end_param?: string | null;
  end_value?: string | number | null;
  initial_value?: string | number | null;
  start_param?: string | null;
}
/**
 * Tables of a Cloudflare D1 database (or named queries over it), one warehouse table each.
 */
export interface D1SourceDefinition {
  description?: string | null;
  destination: WarehouseDestination;
  enabled?: boolean;
  extract: D1Extract;
  /**
   * Data older than this is stale; default derived from the schedule.
   */
  freshness_hours?: number | null;
  /**
   * @maxItems 20
   */
  owners?: string[];
  /**
   * Size of the source's run containers (default: instance_type standard-1).
   */
  runner?: Runner | null;
  schedule?: string | null;
  /**
   * dlt's schema contract (https://dlthub.com/docs/general-usage/schema-contracts): one mode for tables, columns and data types, or each on its own. `freeze` fails a load that would add what it names (a new table, a new column of an existing table, a new data type of an existing column) and loads nothing; `discard_row` drops such rows, `discard_value` such values, and the run counts the rows it dropped. A table's first load always adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve.
   */
  schema_contract?: ("evolve" | "freeze" | "discard_row" | "discard_value") | SchemaContract | null;
  /**
   * Stable id; also the dlt pipeline name.
   */
  source_id: string;
  source_type: "d1";
  staging?: D1Staging;
  tags?: {
    [k: string]: string | undefined;
  };
}
export interface D1Extract {
  /**
   * BLOB columns as base64 text, or as bytes (a binary column).
   */
  blob_encoding?: "base64" | "bytes";
  /**
   * The D1 database's UUID (REST transport).
   */
  database_id: string;
  /**
   * The database's name; the Worker's D1 binding name (worker transport).
   */
  database_name: string;
  /**
   * Rows per page at most; a page D1 refuses as too large is halved.
   */
  page_rows?: number;
  /**
   * Named SELECTs, each loaded as a table (transport rest).
   */
  queries?: D1Query[] | null;
  /**
   * Tables loaded as they are.
   *
   * @maxItems 100
   */
  tables?: D1Table[];
  /**
   * rest: Cloudflare's D1 REST API with an API token; worker: the orchestrator's /internal/d1 pages over its D1 binding.
   */
  transport?: "rest" | "worker";
}
/**
 * A named SELECT whose rows become a table (REST transport only: the Worker never runs SQL it is sent).
 */
export interface D1Query {
  /**
   * Column types that override those read from SQLite's declared types, e.g. {"created_at": "timestamp", "payload": "json"}: dates stored as TEXT stay text and JSON text stays text unless named here.
   */
  columns?: {
    [k: string]:
      "text" | "bigint" | "double" | "decimal" | "bool" | "timestamp" | "date" | "json" | "binary" | undefined;
  } | null;
  /**
   * Incremental cursor column (e.g. updated_at, or rowid for append-only tables): a run reads rows whose cursor is at or after the last run's. Rows deleted in D1 are not seen.
   */
  cursor?: string | null;
  /**
   * The warehouse table the query's rows land in.
   */
  name: string;
  /**
   * Columns of the query that identify a row: keyset pages and merges use them.
   *
   * @minItems 1
   * @maxItems 8
   */
  primary_key: string[];
  sql: string;
  /**
   * Default: destination.write_disposition.
   */
  write_disposition?: ("replace" | "merge" | "append") | null;
}
export interface D1Table {
  /**
   * Column types that override those read from SQLite's declared types, e.g. {"created_at": "timestamp", "payload": "json"}: dates stored as TEXT stay text and JSON text stays text unless named here.
   */
  columns?: {
    [k: string]:
      "text" | "bigint" | "double" | "decimal" | "bool" | "timestamp" | "date" | "json" | "binary" | undefined;
  } | null;
  /**
   * Incremental cursor column (e.g. updated_at, or rowid for append-only tables): a run reads rows whose cursor is at or after the last run's. Rows deleted in D1 are not seen.
   */
  cursor?: string | null;
  /**
   * The D1 table; its warehouse table takes dlt's form of the name.
   */
  name: string;
  /**
   * Merge key and keyset tie-break; default: the table's own PRIMARY KEY (its rowid if none).
   */
  primary_key?: string[] | null;
  /**
   * Default: destination.write_disposition.
   */
  write_disposition?: ("replace" | "merge" | "append") | null;
}
/**
 * A d1 source keeps no raw snapshot: the rows stay in D1, and a full refresh reads them again.
 */
export interface D1Staging {
  /**
   * d1 sources keep no snapshots.
   */
  r2_prefix?: null;
  /**
   * Always false for d1 sources.
   */
  raw_snapshot?: false;
}
/**
 * Files in an R2 (S3-compatible) bucket read by dlt's filesystem source: one table per glob or Logpush job.
 */
export interface R2FilesSourceDefinition {
  description?: string | null;
  destination: WarehouseDestination;
  enabled?: boolean;
  extract: R2FilesExtract;
  /**
   * Data older than this is stale; default derived from the schedule.
   */
  freshness_hours?: number | null;
  /**
   * @maxItems 20
   */
  owners?: string[];
  /**
   * Size of the source's run containers (default: instance_type standard-1).
   */
  runner?: Runner | null;
  schedule?: string | null;
  /**
   * dlt's schema contract (https://dlthub.com/docs/general-usage/schema-contracts): one mode for tables, columns and data types, or each on its own. `freeze` fails a load that would add what it names (a new table, a new column of an existing table, a new data type of an existing column) and loads nothing; `discard_row` drops such rows, `discard_value` such values, and the run counts the rows it dropped. A table's first load always adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve.
   */
  schema_contract?: ("evolve" | "freeze" | "discard_row" | "discard_value") | SchemaContract | null;
  /**
   * Stable id; also the dlt pipeline name.
   */
  source_id: string;
  source_type: "r2_files";
  staging?: R2FilesStaging;
  tags?: {
    [k: string]: string | undefined;
  };
}
export interface R2FilesExtract {
  /**
   * The bucket, reached through the platform's R2 endpoint and credentials (DLT_R2_*).
   */
  bucket: string;
  /**
   * @minItems 1
   * @maxItems 50
   */
  tables: {
    type: string;
  }[];
}
/**
 * The files stay in the bucket: an r2_files source keeps no raw snapshot of its own.
 */
export interface R2FilesStaging {
  /**
   * Object key prefix of the snapshots, relative ('a/b', no '..' or leading '/'); required when raw_snapshot is true.
   */
  r2_prefix?: string | null;
  /**
   * Always false: the files themselves stay in the bucket.
   */
  raw_snapshot?: false;
}
