"""Realistic sample KV data for the sample namespaces: orders, date-keyed leads and vendors.

Deterministic for a given seed and day, so tests can count on it; lead keys are dated relative to `today` so
the incremental lookback windows always find recent leads.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any, NamedTuple

CITIES = ["Portland", "Austin", "Denver", "Boston", "Chicago", "Seattle", "Atlanta", "Oakland"]
PRODUCTS = [
    ("SKU-TIRE-700", 49.0),
    ("SKU-TUBE-700", 8.5),
    ("SKU-CHAIN-11", 39.9),
    ("SKU-BAR-TAPE", 24.0),
    ("SKU-SADDLE", 89.0),
    ("SKU-PEDALS", 129.0),
    ("SKU-LIGHTS", 59.5),
    ("SKU-BAG-FRAME", 74.0),
]
VENDOR_CATEGORIES = ["components", "apparel", "wheels", "accessories", "frames"]


class SampleEntry(NamedTuple):
    key: str
    value: str
    metadata: dict | None
    expiration: int | None


def order_entries(count: int, seed: int = 7) -> Iterator[SampleEntry]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for number in range(count):
        created = start + dt.timedelta(minutes=rng.randrange(0, 480_000))
        items: list[dict[str, Any]] = [
            {"sku": sku, "quantity": rng.randint(1, 3), "unit_price": price}
            for sku, price in rng.sample(PRODUCTS, rng.randint(1, 3))
        ]
        order_id = f"ord_{number:07d}"
        value = {
            "order_id": order_id,
            "status": rng.choice(["paid", "paid", "shipped", "refunded", "pending"]),
            "currency": "USD",
            "total": round(sum(i["quantity"] * i["unit_price"] for i in items), 2),
            "created_at": created.isoformat(),
            "customer": {
                "id": f"cus_{rng.randrange(10**6):06d}",
                "email": f"rider{number}@example.com",
                "city": rng.choice(CITIES),
            },
            "items": items,
        }
        yield SampleEntry(f"order:{order_id}", json.dumps(value), {"schema": 2}, None)


def lead_entries(count: int, today: dt.date, days: int = 10, seed: int = 11) -> Iterator[SampleEntry]:
    rng = random.Random(seed)
    for number in range(count):
        day = today - dt.timedelta(days=number % days)
        value = {
            "lead_id": f"lead_{number:06d}",
            "email": f"lead{number}@example.com",
            "source": rng.choice(["web", "event", "referral"]),
            "score": rng.randint(0, 100),
            "captured_at": f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00+00:00",
        }
        yield SampleEntry(f"lead:{day:%Y%m%d}:{number:06d}", json.dumps(value), None, None)


def vendor_entries(count: int, seed: int = 13) -> Iterator[SampleEntry]:
    rng = random.Random(seed)
    for number in range(count):
        value = {
            "vendor_id": f"ven_{number:04d}",
            "name": f"Vendor {number}",
            "category": rng.choice(VENDOR_CATEGORIES),
            "active": rng.random() > 0.1,
            "contact": {"email": f"sales{number}@vendor{number}.example", "city": rng.choice(CITIES)},
        }
        yield SampleEntry(f"vendor:{number:04d}", json.dumps(value), None, None)


def sample_namespaces(
    today: dt.date, orders: int = 2000, leads: int = 1500, vendors: int = 300
) -> dict[str, list[SampleEntry]]:
    """Entries of every sample namespace, keyed by namespace title (the Worker's KV binding names)."""
    return {
        "ORDERS_KV": list(order_entries(orders)),
        "LEADS_KV": list(lead_entries(leads, today)),
        "VENDOR_KV": list(vendor_entries(vendors)),
    }
