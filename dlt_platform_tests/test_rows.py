from dlt_platform.source_types.cloudflare_kv.rows import AUDIT_COLUMNS, warehouse_row
from dlt_platform.source_types.cloudflare_kv.transports import encode_value

FETCHED_AT = "2026-11-26T00:00:00+00:00"


def row(value: str, encoding: str = "text") -> dict:
    record = {"key": "k", "value": value, "value_encoding": encoding, "metadata": None, "expiration": None,
              "fetched_at": FETCHED_AT}
    return warehouse_row(record, "ns", "TITLE")


def test_json_the_fast_parser_refuses_is_still_json():
    shaped = row('{"big": 123456789012345678901234567890, "ratio": NaN}')
    assert shaped["cf_kv_value_is_json"] and shaped["big"] == 123456789012345678901234567890


def test_every_row_has_every_audit_column_even_for_binary():
    text, encoding = encode_value(b"\xff\xd8\xff")
    shaped = row(text, encoding)
    assert set(AUDIT_COLUMNS) <= set(shaped) and shaped["cf_kv_value_encoding"] == "base64"
    assert not shaped["cf_kv_value_is_json"] and shaped["cf_kv_fetched_at"].isoformat() == FETCHED_AT


def test_collisions_are_detected_after_column_name_normalisation():
    shaped = row('{"cfKvKey": "x", "cf-kv-namespace-id": "y", "value_cf_kv_key": "z"}')
    assert shaped["cf_kv_key"] == "k" and shaped["cf_kv_namespace_id"] == "ns"
    # "value_cfKvKey" would become the column value_cf_kv_key, which the value already uses.
    assert shaped["value_value_cfKvKey"] == "x" and shaped["value_cf-kv-namespace-id"] == "y"
    assert shaped["value_cf_kv_key"] == "z" and "value_cfKvKey" not in shaped
