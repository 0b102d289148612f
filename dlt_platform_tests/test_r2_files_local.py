"""The local stack's R2 folder: `dlt-platform up` seeds today's Logpush batches for the r2_files sample source
(config/sources.json), which loads them from <data dir>/r2/edge-logs; seeding again the same day adds nothing
(the next run reads nothing), the next day's batches are read by the next run."""

import datetime as dt

from dlt_platform.loads import run_load
from dlt_platform.settings import PROJECT_ROOT, Settings
from dlt_platform.source_types.r2_files.local_api import seed_logpush_folder

from .conftest import query


def test_the_sample_source_loads_the_seeded_batches_and_then_only_a_new_days(tmp_path):
    settings = Settings(
        config_path=PROJECT_ROOT / "config" / "sources.json", data_dir=tmp_path / "data", destination_override="duckdb"
    )
    definition = settings.get_source("r2_edge_logs")
    today = dt.date(2026, 12, 7)
    seeded = seed_logpush_folder(settings.data_dir, today)

    assert run_load(definition, settings).rows_by_table == {"http_requests": seeded}
    assert seed_logpush_folder(settings.data_dir, today) == seeded
    assert run_load(definition, settings).rows_by_table == {}
    seed_logpush_folder(settings.data_dir, today + dt.timedelta(days=1))
    assert run_load(definition, settings).rows_by_table == {"http_requests": seeded}

    [(rows, days, first)] = query(
        settings,
        "select count(*), count(distinct edge_start_timestamp::date), "
        "min(edge_start_timestamp) from source_r2.http_requests",
    )
    assert (rows, days) == (2 * seeded, 2)
    assert first == dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
