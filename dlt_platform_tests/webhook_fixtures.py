"""A loopback stand-in of the Worker's webhook internal API (docs/architecture.md, "Webhook feeds"), for loader
and code-location tests before they meet the real Worker (the e2e tests run the real one under wrangler dev).

Real HTTP on 127.0.0.1 with the contract's shapes: `GET /internal/webhooks/waiting`,
`GET /internal/webhooks/:id/deliveries?state=waiting|hour=...&after=&limit=`, `POST .../deliveries/loaded`,
bearer DLT_INTERNAL_TOKEN. Deliveries are accepted the way the Worker accepts them: a duplicate id is ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import pytest

from dlt_platform.local.loopback import JSONHandler, LoopbackServer
from dlt_platform.source_types.webhook.send_local import github_examples  # noqa: F401  (re-exported for the load tests)

MAX_PAGE = 1000


@dataclass
class Delivery:
    document: dict
    state: str = "waiting"
    run_id: str | None = None

    @property
    def order(self) -> tuple[str, str]:
        return self.document["received_at"], self.document["delivery_id"]


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class WebhookStore:
    token: str
    enabled: set[str] = field(default_factory=set)
    deliveries: dict[str, dict[str, Delivery]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_reads_after: int | None = None  # answer 503 to delivery reads after this many pages (a Worker outage)
    pages_served: int = 0
    # GET /internal/sources/:id/load-jobs: the tables a source loaded today with their load jobs (the Worker's count)
    load_jobs: dict[str, list[dict]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, source_id: str, body: dict | str, *, delivery_id: str | None = None,
               received_at: dt.datetime | None = None, event_type: str | None = "push",
               preset: str = "github") -> str:
        delivery_id = delivery_id or str(uuid.uuid4())
        text = body if isinstance(body, str) else orjson.dumps(body).decode()
        document = {"source_id": source_id, "delivery_id": delivery_id,
                    "received_at": iso(received_at or dt.datetime.now(dt.UTC)), "event_type": event_type,
                    "signature_preset": preset, "headers": {"content-type": "application/json"}, "body": text}
        with self.lock:
            self.deliveries.setdefault(source_id, {}).setdefault(delivery_id, Delivery(document))
        return delivery_id

    def waiting_ids(self, source_id: str) -> set[str]:
        return {i for i, d in self.deliveries.get(source_id, {}).items() if d.state == "waiting"}

    def loaded_ids(self, source_id: str) -> set[str]:
        return {i for i, d in self.deliveries.get(source_id, {}).items() if d.state == "loaded"}

    # --- the API ---

    def waiting(self) -> dict:
        sources = []
        for source_id in sorted(self.enabled | set(self.deliveries)):
            waiting = [d for d in self.deliveries.get(source_id, {}).values() if d.state == "waiting"]
            oldest = min((d.document["received_at"] for d in waiting), default=None)
            sources.append({"source_id": source_id, "waiting": len(waiting), "oldest_received_at": oldest})
        return {"sources": sources}

    def page(self, source_id: str, query: dict[str, str]) -> tuple[int, dict]:
        if self.fail_reads_after is not None and self.pages_served >= self.fail_reads_after:
            return 503, {"error": {"code": "unavailable", "message": "R2 unavailable"}}
        self.pages_served += 1
        deliveries = sorted(self.deliveries.get(source_id, {}).values(), key=lambda d: d.order)
        if "hour" in query:
            deliveries = [d for d in deliveries if d.document["received_at"][:13] == query["hour"]]
        elif query.get("state") == "waiting":
            deliveries = [d for d in deliveries if d.state == "waiting"]
        else:
            return 400, {"error": {"code": "bad_request", "message": "state=waiting or hour=YYYY-MM-DDTHH"}}
        if "after" in query:
            after = tuple(orjson.loads(base64.urlsafe_b64decode(query["after"])))
            deliveries = [d for d in deliveries if d.order > after]
        limit = min(int(query.get("limit", 500)), MAX_PAGE)
        chosen = deliveries[:limit]
        more = len(deliveries) > limit
        cursor = base64.urlsafe_b64encode(orjson.dumps(list(chosen[-1].order))).decode() if more else None
        return 200, {"deliveries": [d.document for d in chosen], "next": cursor}

    def mark(self, source_id: str, body: dict) -> tuple[int, dict]:
        ids = body.get("delivery_ids")
        if not isinstance(ids, list) or len(ids) > MAX_PAGE or not isinstance(body.get("run_id"), str):
            return 400, {"error": {"code": "bad_request", "message": "run_id and at most 1000 delivery_ids"}}
        marked = 0
        for delivery_id in ids:
            delivery = self.deliveries.get(source_id, {}).get(delivery_id)
            if delivery is not None and delivery.state == "waiting":
                delivery.state, delivery.run_id = "loaded", body["run_id"]
                marked += 1
        return 200, {"marked": marked}


class _Handler(JSONHandler):
    server: WebhookApiServer

    def _answer(self, method: str) -> None:
        store: WebhookStore = self.server.owner
        raw = self.read_body()
        if self.headers.get("Authorization") != f"Bearer {store.token}":
            return self.send_body(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        parts = [unquote(part) for part in url.path.strip("/").split("/")]
        with store.lock:
            store.requests.append((method, self.path))
            if method == "GET" and parts == ["internal", "webhooks", "waiting"]:
                return self.send_body(200, store.waiting())
            if method == "GET" and len(parts) == 4 and parts[:2] == ["internal", "sources"] and parts[3] == "load-jobs":
                return self.send_body(200, {"source_id": parts[2], "tables": store.load_jobs.get(parts[2], [])})
            if len(parts) >= 4 and parts[:2] == ["internal", "webhooks"] and parts[3] == "deliveries":
                if method == "GET" and len(parts) == 4:
                    return self.send_body(*store.page(parts[2], query))
                if method == "POST" and parts[4:] == ["loaded"]:
                    return self.send_body(*store.mark(parts[2], orjson.loads(raw or b"{}")))
        self.send_body(404, {"error": {"code": "not_found", "message": url.path}})

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


class WebhookApiServer(LoopbackServer):
    def __init__(self, store: WebhookStore) -> None:
        super().__init__(_Handler, store)

    @property
    def store(self) -> WebhookStore:
        return self.owner


@pytest.fixture
def webhook_api():
    with WebhookApiServer(WebhookStore(token="internal-test-token")) as server:
        yield server


# Stripe's events as its API reference documents them (https://docs.stripe.com/api/events/object and the objects
# of each type). No package ships Stripe's event fixtures for offline use, so the objects are built here with
# every documented field of these types, varied per event.
STRIPE_API_VERSION = "2024-06-20"


def _address(n: int) -> dict:
    return {"city": "Berlin", "country": "DE", "line1": f"Torstrasse {n}", "line2": None,
            "postal_code": f"10{n:03d}", "state": None}


def _customer(n: int, created: int) -> dict:
    return {
        "id": f"cus_{n:014d}", "object": "customer", "address": _address(n), "balance": 0, "created": created,
        "currency": "eur", "default_source": None, "delinquent": False, "description": f"Customer {n}",
        "discount": None, "email": f"buyer{n}@example.com", "invoice_prefix": f"A{n:05d}",
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False, "metadata": {"crm_id": str(9000 + n)}, "name": f"Buyer {n}", "next_invoice_sequence": 1,
        "phone": None, "preferred_locales": ["de"], "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def _card(n: int) -> dict:
    return {"brand": "visa", "checks": {"address_line1_check": None, "address_postal_code_check": "pass",
                                        "cvc_check": "pass"},
            "country": "US", "exp_month": 1 + n % 12, "exp_year": 2030, "fingerprint": f"fp{n:010d}",
            "funding": "credit", "last4": "4242", "network": "visa", "three_d_secure_usage": {"supported": True},
            "wallet": None}


def _charge(n: int, created: int) -> dict:
    return {
        "id": f"ch_{n:014d}", "object": "charge", "amount": 1000 + n, "amount_captured": 1000 + n,
        "amount_refunded": 0, "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": f"txn_{n:014d}",
        "billing_details": {"address": _address(n), "email": f"buyer{n}@example.com", "name": f"Buyer {n}",
                            "phone": None},
        "calculated_statement_descriptor": "ACME SHOP", "captured": True, "created": created, "currency": "eur",
        "customer": f"cus_{n:014d}", "description": None, "disputed": False, "failure_balance_transaction": None,
        "failure_code": None, "failure_message": None, "fraud_details": {}, "invoice": None, "livemode": False,
        "metadata": {}, "on_behalf_of": None,
        "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                    "risk_score": n % 100, "seller_message": "Payment complete.", "type": "authorized"},
        "paid": True, "payment_intent": f"pi_{n:014d}", "payment_method": f"pm_{n:014d}",
        "payment_method_details": {"card": {**_card(n), "installments": None, "mandate": None,
                                            "network_token": {"used": False}}, "type": "card"},
        "receipt_email": None, "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{n}", "refunded": False, "review": None,
        "shipping": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None, "transfer_group": None,
    }


def _payment_intent(n: int, created: int) -> dict:
    return {
        "id": f"pi_{n:014d}", "object": "payment_intent", "amount": 1000 + n, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 1000 + n, "application": None,
        "application_fee_amount": None, "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "canceled_at": None, "cancellation_reason": None, "capture_method": "automatic",
        "client_secret": None, "confirmation_method": "automatic", "created": created,
        "currency": "eur", "customer": f"cus_{n:014d}", "description": None, "invoice": None,
        "last_payment_error": None, "latest_charge": f"ch_{n:014d}", "livemode": False,
        "metadata": {"order_id": str(n)}, "next_action": None, "on_behalf_of": None,
        "payment_method": f"pm_{n:014d}", "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": None, "receipt_email": None, "review": None,
        "setup_future_usage": None, "shipping": None, "source": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None, "transfer_group": None,
    }


def _price(n: int, created: int) -> dict:
    return {"id": f"price_{n % 3:014d}", "object": "price", "active": True, "billing_scheme": "per_unit",
            "created": created, "currency": "eur", "custom_unit_amount": None, "livemode": False,
            "lookup_key": None, "metadata": {}, "nickname": None, "product": f"prod_{n % 3:014d}",
            "recurring": {"aggregate_usage": None, "interval": "month", "interval_count": 1, "meter": None,
                          "trial_period_days": None, "usage_type": "licensed"},
            "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None, "type": "recurring",
            "unit_amount": 1500, "unit_amount_decimal": "1500"}


def _invoice(n: int, created: int) -> dict:
    line = {"id": f"il_{n:014d}", "object": "line_item", "amount": 1500, "currency": "eur",
            "description": "1 x Pro (at EUR 15.00 / month)", "discount_amounts": [], "discountable": True,
            "discounts": [], "invoice": f"in_{n:014d}", "livemode": False, "metadata": {},
            "period": {"end": created + 2592000, "start": created}, "price": _price(n, created),
            "proration": False, "proration_details": {"credited_items": None}, "quantity": 1,
            "subscription": f"sub_{n:014d}", "subscription_item": f"si_{n:014d}", "tax_amounts": [],
            "tax_rates": [], "type": "subscription", "unit_amount_excluding_tax": "1500"}
    return {
        "id": f"in_{n:014d}", "object": "invoice", "account_country": "DE", "account_name": "Acme GmbH",
        "account_tax_ids": None, "amount_due": 1500, "amount_paid": 1500, "amount_remaining": 0,
        "amount_shipping": 0, "application": None, "attempt_count": 1, "attempted": True,
        "auto_advance": False, "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_reason": "subscription_cycle", "charge": f"ch_{n:014d}", "collection_method": "charge_automatically",
        "created": created, "currency": "eur", "custom_fields": None, "customer": f"cus_{n:014d}",
        "customer_address": _address(n), "customer_email": f"buyer{n}@example.com", "customer_name": f"Buyer {n}",
        "customer_phone": None, "customer_shipping": None, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": None, "default_source": None, "default_tax_rates": [], "description": None,
        "discount": None, "discounts": [], "due_date": None, "ending_balance": 0, "footer": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{n}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/{n}/pdf",
        "last_finalization_error": None, "latest_revision": None,
        "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                  "url": f"/v1/invoices/in_{n:014d}/lines"},
        "livemode": False, "metadata": {}, "next_payment_attempt": None, "number": f"A{n:05d}-0001",
        "on_behalf_of": None, "paid": True, "paid_out_of_band": False, "payment_intent": f"pi_{n:014d}",
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": created, "period_start": created - 2592000, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "quote": None, "receipt_number": None, "starting_balance": 0,
        "statement_descriptor": None, "status": "paid",
        "status_transitions": {"finalized_at": created, "marked_uncollectible_at": None, "paid_at": created + 5,
                               "voided_at": None},
        "subscription": f"sub_{n:014d}", "subtotal": 1500, "subtotal_excluding_tax": 1500, "tax": None,
        "test_clock": None, "total": 1500, "total_discount_amounts": [], "total_excluding_tax": 1500,
        "total_tax_amounts": [], "transfer_data": None, "webhooks_delivered_at": created + 1,
    }


def _subscription(n: int, created: int) -> dict:
    return {
        "id": f"sub_{n:014d}", "object": "subscription", "application": None, "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None}, "billing_cycle_anchor": created,
        "billing_thresholds": None, "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically", "created": created, "currency": "eur",
        "current_period_end": created + 2592000, "current_period_start": created, "customer": f"cus_{n:014d}",
        "days_until_due": None, "default_payment_method": f"pm_{n:014d}", "default_source": None,
        "default_tax_rates": [], "description": None, "discount": None, "discounts": [], "ended_at": None,
        "items": {"object": "list", "data": [{
            "id": f"si_{n:014d}", "object": "subscription_item", "billing_thresholds": None, "created": created,
            "discounts": [], "metadata": {}, "price": _price(n, created), "quantity": 1,
            "subscription": f"sub_{n:014d}", "tax_rates": []}],
            "has_more": False, "total_count": 1, "url": f"/v1/subscription_items?subscription=sub_{n:014d}"},
        "latest_invoice": f"in_{n:014d}", "livemode": False, "metadata": {}, "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None, "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
        "schedule": None, "start_date": created, "status": "active", "test_clock": None, "transfer_data": None,
        "trial_end": None, "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def _checkout_session(n: int, created: int) -> dict:
    return {
        "id": f"cs_test_{n:014d}", "object": "checkout.session", "after_expiration": None,
        "allow_promotion_codes": None, "amount_subtotal": 1000 + n, "amount_total": 1000 + n,
        "automatic_tax": {"enabled": False, "liability": None, "status": None}, "billing_address_collection": None,
        "cancel_url": "https://shop.example.com/cancel", "client_reference_id": None, "consent": None,
        "consent_collection": None, "created": created, "currency": "eur", "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": f"cus_{n:014d}", "customer_creation": "if_required",
        "customer_details": {"address": _address(n), "email": f"buyer{n}@example.com", "name": f"Buyer {n}",
                             "phone": None, "tax_exempt": "none", "tax_ids": []},
        "customer_email": None, "expires_at": created + 86400, "invoice": None, "invoice_creation": None,
        "livemode": False, "locale": None, "metadata": {}, "mode": "payment", "payment_intent": f"pi_{n:014d}",
        "payment_link": None, "payment_method_collection": "if_required",
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "payment_status": "paid",
        "phone_number_collection": {"enabled": False}, "recovered_from": None, "setup_intent": None,
        "shipping_address_collection": None, "shipping_cost": None, "shipping_details": None,
        "shipping_options": [], "status": "complete", "submit_type": None, "subscription": None,
        "success_url": "https://shop.example.com/thanks",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted",
        "url": None,
    }


STRIPE_OBJECTS = {
    "customer.created": _customer,
    "customer.updated": _customer,
    "charge.succeeded": _charge,
    "payment_intent.succeeded": _payment_intent,
    "invoice.paid": _invoice,
    "customer.subscription.created": _subscription,
    "checkout.session.completed": _checkout_session,
}


def stripe_events(per_type: int = 5, start: int = 1_764_000_000) -> list[tuple[str, str, bytes]]:
    """(event id, type, body) of Stripe events, `per_type` of each type in STRIPE_OBJECTS."""
    events = []
    for kind_number, (kind, make) in enumerate(STRIPE_OBJECTS.items()):
        for n in range(per_type):
            number = kind_number * 1000 + n
            created = start + number
            data: dict = {"object": make(number, created)}
            if kind.endswith(".updated"):
                data["previous_attributes"] = {"email": f"old{number}@example.com", "metadata": {"crm_id": None}}
            event_id = f"evt_{number:024d}"
            event = {"id": event_id, "object": "event", "api_version": STRIPE_API_VERSION, "created": created,
                     "data": data, "livemode": False, "pending_webhooks": 1,
                     "request": {"id": f"req_{number:014d}", "idempotency_key": str(uuid.UUID(int=number))},
                     "type": kind}
            events.append((event_id, kind, json.dumps(event).encode()))
    return events
