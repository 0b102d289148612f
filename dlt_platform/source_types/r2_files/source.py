"""Files in an R2 bucket as a dlt source: dlt's own `filesystem` resource lists a table's files over R2's S3 API
and dlt's readers (read_csv, read_jsonl, read_parquet; gzip by the `.gz` suffix) turn them into rows.

Incremental on the object's modification time (dlt's incremental on `modification_date`, one state per table):
an append or merge table reads the files that are new or changed since the previous run; a replace table reads
every matching file each run. The platform adds three things: the R2 endpoint and credentials it already has
(settings.py, DLT_R2_*; a local folder <data_dir>/r2/<bucket> when no endpoint is set), the Logpush preset
(logpush.py), and for Logpush files a check that a file is whole before any of its rows are read.
"""

from __future__ import annotations

import dlt
from dlt.sources import DltResource, DltSource
from dlt.sources.filesystem import filesystem, read_csv, read_jsonl, read_parquet

from dlt_platform.load_request import LoadRequest
from dlt_platform.settings import Settings
from dlt_platform.source_types.base import SourceError
from dlt_platform.source_types.r2_files.definition import (
    FilesTable,
    LogpushTable,
    R2FilesSourceDefinition,
    table_name,
)
from dlt_platform.source_types.r2_files.logpush import timestamp_hints, typed_timestamps, whole_files

READERS: dict[str, DltResource] = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet}
# Files listed per page of the filesystem resource; Logpush pages hold the files' content (checked whole before
# reading), so they stay small.
FILES_PER_PAGE, LOGPUSH_FILES_PER_PAGE = 100, 10


class R2FilesError(SourceError, ValueError):
    """The bucket cannot be read as configured; the message names the variable or field."""


def bucket_location(definition: R2FilesSourceDefinition, settings: Settings):
    """(bucket URL, fsspec filesystem): the bucket over R2's S3 API when DLT_R2_ENDPOINT_URL is set, else the local
    folder <data_dir>/r2/<bucket> (the local stack's stand-in for R2)."""
    import fsspec

    bucket = definition.extract.bucket
    if not settings.r2_endpoint_url:
        return (settings.data_dir / "r2" / bucket).as_posix(), fsspec.filesystem("file")
    if not (settings.r2_access_key_id and settings.r2_secret_access_key):
        raise R2FilesError(
            "DLT_R2_ACCESS_KEY_ID and DLT_R2_SECRET_ACCESS_KEY: required to read bucket "
            f"'{bucket}' (DLT_R2_ENDPOINT_URL is set)"
        )
    # A filesystem of the run's own: no listing cached from an earlier run (a second run must see new files).
    s3 = fsspec.filesystem(
        "s3",
        key=settings.r2_access_key_id,
        secret=settings.r2_secret_access_key,
        client_kwargs={"endpoint_url": settings.r2_endpoint_url, "region_name": "auto"},
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    # Listing a bucket that does not exist finds no file: a misspelt bucket would load nothing, run after run.
    if not s3.exists(bucket):
        raise R2FilesError(
            f"extract.bucket: no bucket '{bucket}' at DLT_R2_ENDPOINT_URL that the R2 key "
            "(DLT_R2_ACCESS_KEY_ID) can see"
        )
    return f"s3://{bucket}", s3


def describe_location(definition: R2FilesSourceDefinition, settings: Settings) -> str:
    return "s3" if settings.r2_endpoint_url else "local folder"


def table_disposition(
    definition: R2FilesSourceDefinition, table: FilesTable | LogpushTable, request: LoadRequest
) -> str:
    """How a run writes a table: as configured, except that a run reading part of the source (a limit) never
    replaces: it merges on the table's key, and a replace table without one cannot run partly."""
    from dlt_platform.source_types.r2_files import R2_FILES

    configured = definition.disposition(table)
    if configured == "replace" and R2_FILES.reads_part_of_source(definition, request):
        if table.primary_key is None:
            raise ValueError(
                f"limit: table '{table_name(table)}' replaces its table and has no primary_key, so a "
                "partial run could neither replace nor merge it; run the whole source"
            )
        return "merge"
    return configured


def checked_files_request(definition: R2FilesSourceDefinition, request: LoadRequest) -> None:
    for name, asked in (
        ("keys", request.keys is not None),
        ("from_snapshot", bool(request.from_snapshot)),
        ("partition", request.window is not None),
    ):
        if asked:
            raise ValueError(
                f"{name}: not for r2_files sources; a run reads the tables' new and changed files "
                "(full_refresh: every file again)"
            )
    for table in definition.extract.tables:
        table_disposition(definition, table, request)


def _first_rows(limit: int):
    seen = 0

    def keep(_row) -> bool:
        nonlocal seen
        seen += 1
        return seen <= limit

    return keep


def table_resource(
    definition: R2FilesSourceDefinition,
    table: FilesTable | LogpushTable,
    bucket_url: str,
    fs_client,
    request: LoadRequest,
) -> DltResource:
    """One table: the filesystem listing of its files piped into dlt's reader, named after the table."""
    name = table_name(table)
    disposition = table_disposition(definition, table, request)
    # Append and merge tables read new and changed files only. Not for replace (each run is the whole table) nor
    # for a limited run (a sample: it must not move the cursor past files it did not load).
    incremental: dlt.sources.incremental | None = (
        dlt.sources.incremental("modification_date") if disposition != "replace" and request.limit is None else None
    )
    logpush = table if isinstance(table, LogpushTable) else None
    listing = filesystem(
        bucket_url=bucket_url,
        credentials=fs_client,
        file_glob=table.file_glob,
        files_per_page=FILES_PER_PAGE if logpush is None else LOGPUSH_FILES_PER_PAGE,
        extract_content=logpush is not None,  # Logpush files are read once: checked whole, then parsed from memory
        incremental=incremental,
    ).with_name(f"{name}_files")  # each table keeps its own cursor (the resource's state is keyed by its name)
    if logpush is not None:
        listing.add_filter(whole_files)
    resource = (listing | READERS[table.reader]()).with_name(name)
    if logpush is not None:
        resource.add_map(typed_timestamps(logpush))
    if request.limit is not None:
        resource.add_filter(_first_rows(request.limit))
    resource.apply_hints(
        write_disposition=disposition,  # type: ignore[arg-type]  # replace, merge or append
        primary_key=table.primary_key,
        columns=timestamp_hints(logpush) if logpush is not None else None,
    )
    return resource


def r2_files_source(
    definition: R2FilesSourceDefinition,
    settings: Settings,
    request: LoadRequest | None = None,
    describe_only: bool = False,
) -> DltSource:
    """The dlt source of an r2_files definition for one (checked) request; one resource per table.
    `describe_only` (Dagster's asset graph) reads no credentials: nothing runs."""
    request = request or LoadRequest()
    checked_files_request(definition, request)
    if describe_only:
        import fsspec

        bucket_url, fs_client = f"s3://{definition.extract.bucket}", fsspec.filesystem("memory")
    else:
        bucket_url, fs_client = bucket_location(definition, settings)
    resources = [
        table_resource(definition, table, bucket_url, fs_client, request) for table in definition.extract.tables
    ]

    @dlt.source(name=definition.source_id)
    def platform_r2_files():
        return resources

    return platform_r2_files()
