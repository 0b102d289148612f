"""webhook: deliveries that senders POST to the Worker's /hooks/<source_id>, verified and kept by the Worker and
loaded in batches, merged on the delivery id (README.md in this folder)."""

from __future__ import annotations

from dlt_platform.definition_base import WriteDisposition
from dlt_platform.source_types.base import SourceType
from dlt_platform.source_types.webhook.definition import WebhookSourceDefinition


class Webhook(SourceType):
    name = "webhook"
    model = WebhookSourceDefinition
    system_kind = "webhook"

    def write_disposition(self, definition: WebhookSourceDefinition, request) -> WriteDisposition:
        return "merge"  # on the delivery id, always: a batch of deliveries is never the whole feed

    def check_request(self, definition: WebhookSourceDefinition, request) -> None:
        for name, asked in (
            ("keys", request.keys is not None),
            ("full_refresh", request.full_refresh),
            ("from_snapshot", bool(request.from_snapshot)),
        ):
            if asked:
                raise ValueError(
                    f"{name}: not for webhook sources; a run loads the waiting deliveries, and a run of "
                    "an hour partition replays that hour"
                )

    def describe(self, definition: WebhookSourceDefinition, settings) -> dict[str, str]:
        return {"reads": f"/hooks/{definition.source_id}", "transport": definition.extract.signature.preset}

    def dlt_source(self, definition: WebhookSourceDefinition, settings, request):
        from dlt_platform.source_types.webhook.source import webhook_deliveries

        return webhook_deliveries.clone(name=definition.source_id)(definition, settings, request)

    def after_load(self, definition: WebhookSourceDefinition, settings, pipeline, load_ids, run_id) -> dict:
        # Deliveries are marked loaded in the Worker only now: a run that failed before leaves them waiting.
        from dlt_platform.source_types.webhook.source import mark_loaded

        if not load_ids:
            return {}
        return {"deliveries_marked_loaded": mark_loaded(definition, settings, pipeline, load_ids, run_id)}

    def source_system_key(self, definition: WebhookSourceDefinition):
        import dagster as dg

        return dg.AssetKey([self.name, definition.source_id])

    def lineage_specs(self, definition: WebhookSourceDefinition):
        from dlt_platform.source_types.webhook.assets import lineage_specs

        return lineage_specs(definition)

    def partitions(self, definition: WebhookSourceDefinition):
        from dlt_platform.source_types.webhook.assets import DELIVERY_HOURS

        return DELIVERY_HOURS

    def build_asset(self, definition: WebhookSourceDefinition, settings, version):
        from dlt_platform.source_types.webhook.assets import build_webhook_asset

        return build_webhook_asset(definition, settings, version)

    def sensors(self, definition: WebhookSourceDefinition, job, settings):
        # Deliveries start runs as they arrive, unless the definition asks for a schedule.
        from dlt_platform.source_types.webhook.assets import build_delivery_sensor

        return [] if definition.schedule else [build_delivery_sensor(definition, job, settings)]


WEBHOOK = Webhook()
