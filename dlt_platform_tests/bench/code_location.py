"""Figures of the Dagster code location: seconds to build and resolve it for N generated sources.

  .venv/bin/python -m dlt_platform_tests.bench.code_location [--sources 100 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dlt_platform.config import parse_sources_document
from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform.settings import Settings
from dlt_platform_tests.orchestration.conftest import generated_sources_document


def build_seconds(count: int, settings: Settings) -> float:
    definitions = parse_sources_document(generated_sources_document(count))
    started = time.perf_counter()
    location = build_platform_definitions(definitions, settings)
    location.resolve_asset_graph()
    location.get_repository_def()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), destination_override="duckdb")
        for count in args.sources:
            runs = [build_seconds(count, settings) for _ in range(args.repeat)]
            print(f"{count} sources: built and resolved in {statistics.median(runs):.2f} s "
                  f"(median of {args.repeat}; min {min(runs):.2f}, max {max(runs):.2f})")


if __name__ == "__main__":
    main()
