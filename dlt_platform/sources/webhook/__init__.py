"""Webhook deliveries as a dlt source: what the Worker accepted and kept, read through its internal API.

The Worker is the one way to reach the deliveries (it verified them, wrote them to R2 and recorded them in D1).
A normal run reads the deliveries waiting to be loaded, oldest first, up to those received when the run
started; a replay reads every delivery received in the hours of its window, loaded or not. Either way the rows
merge on webhook_delivery_id, so a redelivered or replayed delivery never adds a row.

The ids a run read are kept in its dlt load package state. Only once that package has loaded are they marked
loaded in the Worker (`mark_loaded`): a run that fails leaves them waiting for the next one, and a package an
earlier run could not load is marked when a later run finally loads it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dlt
from dlt.sources import DltResource

from dlt_platform.config import WebhookSourceDefinition
from dlt_platform.orchestration.worker_client import WorkerClient
from dlt_platform.load_request import LoadRequest
from dlt_platform.settings import Settings
from dlt_platform.sources.webhook.rows import AUDIT_COLUMN_HINTS, parse_received_at, warehouse_row

PAGE_SIZE = 500
MARK_BATCH = 1000  # the Worker's limit of ids per `loaded` call
DELIVERY_IDS_STATE = "webhook_delivery_ids"  # load package state: the ids this package holds


class WebhookConfigError(ValueError):
    pass


def open_worker_client(settings: Settings, timeout_seconds: float = 60.0) -> WorkerClient:
    if not settings.orchestrator_url or not settings.internal_token:
        raise WebhookConfigError("DLT_ORCHESTRATOR_URL and DLT_INTERNAL_TOKEN: both are needed to read webhook "
                                 "deliveries (the Worker keeps them)")
    return WorkerClient(settings.orchestrator_url, settings.internal_token, timeout_seconds=timeout_seconds,
                        policy=settings.retry_policy)


def replay_hours(window: tuple[dt.datetime, dt.datetime]) -> list[str]:
    """The UTC hours (YYYY-MM-DDTHH, the Worker's `hour=`) starting in [start, end)."""
    start, end = (moment.astimezone(dt.timezone.utc) for moment in window)
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += dt.timedelta(hours=1)
    hours = []
    while hour < end:
        hours.append(f"{hour:%Y-%m-%dT%H}")
        hour += dt.timedelta(hours=1)
    return hours


def _pages(client: WorkerClient, source_id: str, hour: str | None) -> Iterator[list[dict]]:
    after = None
    while True:
        page = client.webhook_deliveries(source_id, hour=hour, after=after, limit=PAGE_SIZE)
        if page["deliveries"]:
            yield page["deliveries"]
        after = page.get("next")
        if not after:
            return


def delivery_pages(definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest
                   ) -> Iterator[list[dict]]:
    """Pages of delivery documents for one run: the hours of a replay window, or the waiting deliveries
    received before the run started (so a steady stream of new ones cannot keep a run going forever)."""
    remaining = request.limit
    with open_worker_client(settings) as client:
        if request.window is not None:
            pages = (page for hour in replay_hours(request.window) for page in _pages(client, definition.source_id, hour))
        else:
            pages = _pages(client, definition.source_id, None)
        started = request.now or dt.datetime.now(dt.timezone.utc)
        for page in pages:
            if request.window is None:
                before = [d for d in page if parse_received_at(d["received_at"]) <= started]
                done, page = len(before) < len(page), before
            else:
                done = False
            if remaining is not None:
                page, done = page[:remaining], done or len(page) >= remaining
                remaining -= len(page)
            if page:
                yield page
            if done:
                return


def webhook_rows(definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest) -> Iterator[list[dict]]:
    state = dlt.current.load_package_state()["state"]
    ids: list[str] = state.setdefault(DELIVERY_IDS_STATE, [])
    for page in delivery_pages(definition, settings, request):
        rows = [warehouse_row(document) for document in page]
        ids.extend(row["webhook_delivery_id"] for row in rows)
        if request.on_page is not None:
            request.on_page(len(rows))
        yield rows


def webhook_resource(definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest) -> DltResource:
    # Always merge on the delivery id whatever the definition's write_disposition says: redeliveries and replays
    # must never add rows, and a batch of deliveries is never the whole feed (replace would drop the rest).
    # root_key (on the source) lets a merge replace a delivery's child rows too.
    return dlt.resource(
        webhook_rows(definition, settings, request),
        name=definition.destination.table,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key="webhook_delivery_id",
        columns=AUDIT_COLUMN_HINTS,
    )


@dlt.source(root_key=True)
def webhook_deliveries(definition: WebhookSourceDefinition, settings: Settings,
                       request: LoadRequest = LoadRequest()) -> DltResource:
    return webhook_resource(definition, settings, request)


def delivery_ids_of(pipeline: dlt.Pipeline, load_ids: list[str]) -> list[str]:
    ids: list[str] = []
    for load_id in load_ids:
        ids.extend(pipeline.get_load_package_state(load_id).get(DELIVERY_IDS_STATE) or [])
    return list(dict.fromkeys(ids))


def mark_loaded(definition: WebhookSourceDefinition, settings: Settings, pipeline: dlt.Pipeline,
                load_ids: list[str], run_id: str) -> int:
    """Tell the Worker the deliveries of these (loaded) packages are loaded; returns how many ids were sent.
    Call only after the packages loaded. If it fails the deliveries stay waiting and the next run loads them
    again, which the merge makes harmless."""
    ids = delivery_ids_of(pipeline, load_ids)
    if ids:
        with open_worker_client(settings) as client:
            for start in range(0, len(ids), MARK_BATCH):
                client.mark_webhook_deliveries_loaded(definition.source_id, run_id, ids[start:start + MARK_BATCH])
    return len(ids)
