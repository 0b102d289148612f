"""The definition of an r2_files source: files in an R2 bucket (or any S3-compatible bucket behind the platform's
R2 endpoint), one table per glob, or per Cloudflare Logpush job with the `logpush` preset."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from dlt_platform.definition_base import (
    IDENTIFIER_PATTERN,
    R2_PREFIX_MESSAGE,
    R2_PREFIX_PATTERN,
    SourceBase,
    Staging,
    StrictModel,
    WarehouseDestination,
    tagged_union_check,
)

# S3's bucket naming rules as R2 applies them: 3-63 lower-case letters, digits and '-'.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9\-]{1,61}[a-z0-9]$"
TABLE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"  # the table's name as is (dlt would not rename it)
# A glob relative to the bucket's root (fsspec's *, **, ?, [..]): '/'-separated segments, none empty or starting
# with '.' (so no '..'), no whitespace or backslash.
GLOB_PATTERN = r"^[^/\\\s.][^/\\\s]*(/[^/\\\s.][^/\\\s]*)*$"
GLOB_MESSAGE = (
    "must be a glob relative to the bucket's root, e.g. 'exports/orders/*.csv.gz': segments joined by "
    "'/', none empty or starting with '.', no leading '/', no whitespace"
)
# Cloudflare's dataset names (http_requests, workers_trace_events, firewall_events, ...).
LOGPUSH_DATASET_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
DATE_FOLDER_GLOB = "[0-9]" * 8  # Logpush's {DATE}: YYYYMMDD

WriteDisposition = Literal["replace", "merge", "append"]
PrimaryKey = (
    Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    | Annotated[list[Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]], Field(min_length=1, max_length=8)]
)


class FileTableBase(StrictModel):
    primary_key: PrimaryKey | None = Field(None, description="Column(s) a merge upserts on.")
    write_disposition: WriteDisposition | None = Field(
        None,
        description="append or merge: each run reads the new and changed files only (by their modification "
        "time); replace: each run reads every matching file. Default: destination.write_disposition.",
    )


class FilesTable(FileTableBase):
    """Files matching a glob, read with dlt's reader for their format (gzip files, *.gz, are decompressed)."""

    type: Literal["files"]
    name: Annotated[str, Field(pattern=TABLE_NAME_PATTERN, description="The table the files' rows land in.")]
    glob: Annotated[
        str,
        Field(
            max_length=512,
            pattern=GLOB_PATTERN,
            description="Object keys to read, relative to the bucket's root (fsspec glob: *, **, ?, [...]).",
            json_schema_extra={"x-message": GLOB_MESSAGE},
        ),
    ]
    format: Literal["csv", "jsonl", "parquet"] = Field(
        ..., description="dlt's reader: read_csv, read_jsonl, read_parquet."
    )

    @property
    def table(self) -> str:
        return self.name

    @property
    def file_glob(self) -> str:
        return self.glob

    @property
    def reader(self) -> str:
        return self.format


class LogpushTable(FileTableBase):
    """The files of one Cloudflare Logpush job: `<prefix>/{DATE}/*.log.gz`, gzip NDJSON, with the job's timestamp
    fields typed as timestamps."""

    type: Literal["logpush"]
    dataset: Annotated[
        str,
        Field(
            pattern=LOGPUSH_DATASET_PATTERN,
            description="The job's Logpush dataset, e.g. http_requests, workers_trace_events.",
        ),
    ]
    name: Annotated[str, Field(pattern=TABLE_NAME_PATTERN)] | None = Field(
        None, description="The table; default: the dataset's name."
    )
    prefix: (
        Annotated[
            str, Field(max_length=512, pattern=R2_PREFIX_PATTERN, json_schema_extra={"x-message": R2_PREFIX_MESSAGE})
        ]
        | None
    ) = Field(
        None,
        description="The job's destination path before {DATE} (e.g. 'logs/http_requests'); default: the bucket's root.",
    )
    timestamp_format: Literal["rfc3339", "unix", "unixnano"] = Field(
        "rfc3339",
        description="The job's output_options.timestamp_format: RFC 3339 text, Unix seconds or Unix nanoseconds.",
    )
    timestamp_fields: list[Annotated[str, Field(pattern=FIELD_NAME_PATTERN)]] | None = Field(
        None,
        max_length=50,
        description="Fields typed as timestamps; default: every field named *Timestamp or "
        "Datetime (the timestamp fields of Cloudflare's datasets).",
    )

    @property
    def table(self) -> str:
        return self.name or self.dataset

    @property
    def file_glob(self) -> str:
        """`<prefix>/{DATE}/*.log.gz`: a job's batches, one folder per day (YYYYMMDD)."""
        return f"{self.prefix + '/' if self.prefix else ''}{DATE_FOLDER_GLOB}/*.log.gz"

    @property
    def reader(self) -> str:
        return "jsonl"  # Logpush's default output_type, ndjson


_TABLE_TAGS = ("files", "logpush")
FileTable = Annotated[FilesTable | LogpushTable, Field(discriminator="type"), tagged_union_check("table", _TABLE_TAGS)]


def table_name(table: FilesTable | LogpushTable) -> str:
    return table.table


class R2FilesExtract(StrictModel):
    bucket: Annotated[
        str,
        Field(
            pattern=BUCKET_PATTERN,
            description="The bucket, reached through the platform's R2 endpoint and credentials (DLT_R2_*).",
        ),
    ]
    tables: list[FileTable] = Field(min_length=1, max_length=50)

    @field_validator("tables")
    @classmethod
    def _distinct_names(cls, tables: list) -> list:
        # The same rule is in the Worker (worker/src/source_types/r2_files.ts): a schema cannot compare values.
        names = [table_name(table) for table in tables]
        duplicates = [
            f"{index}: duplicate table name '{name}'" for index, name in enumerate(names) if name in names[:index]
        ]
        if duplicates:
            raise ValueError("; ".join(duplicates))
        return tables


class R2FilesStaging(Staging):
    """The files stay in the bucket: an r2_files source keeps no raw snapshot of its own."""

    raw_snapshot: Literal[False] = Field(False, description="Always false: the files themselves stay in the bucket.")


class R2FilesSourceDefinition(SourceBase):
    """Files in an R2 (S3-compatible) bucket read by dlt's filesystem source: one table per glob or Logpush job."""

    source_type: Literal["r2_files"]
    destination: WarehouseDestination
    staging: R2FilesStaging = Field(default_factory=R2FilesStaging)
    extract: R2FilesExtract

    @field_validator("extract")
    @classmethod
    def _merge_needs_a_key(cls, extract: R2FilesExtract, info: ValidationInfo) -> R2FilesExtract:
        destination = info.data.get("destination")
        default = destination.write_disposition if destination is not None else "replace"
        for index, table in enumerate(extract.tables):
            if (table.write_disposition or default) == "merge" and table.primary_key is None:
                raise ValueError(f"tables.{index}: table '{table_name(table)}' merges but has no primary_key")
        return extract

    def disposition(self, table: FilesTable | LogpushTable) -> str:
        """A table's configured write disposition (its own, else the destination's)."""
        return table.write_disposition or self.destination.write_disposition
