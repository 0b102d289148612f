import dataclasses
import http.server
import ssl
import subprocess
import threading

import httpx
import pytest

from dlt_platform.http import RateBudget, RetryPolicy, http_client, tls_context
from dlt_platform.source_types.cloudflare_kv.rest_client import CloudflareAPIError, CloudflareKVClient
from dlt_platform.source_types.cloudflare_kv.transports import RestTransport

from .conftest import ACCOUNT_ID, API_TOKEN, NAMESPACE_ID

FAST = RetryPolicy(attempts=4, backoff_seconds=0.01, max_backoff_seconds=0.05, max_retry_after_seconds=2)
NASTY_KEYS = ["a/b/c", "what?x=1&y=2", "100% sure", "with space", "ünïcødé/ключ/键", "#hash", "plus+sign", "dots..in..key",
              "trailing/"]


def client(kv_api, policy=FAST, budget=None, token=API_TOKEN) -> CloudflareKVClient:
    return CloudflareKVClient(kv_api.base_url, ACCOUNT_ID, token, budget=budget, policy=policy)


def transport(kv_api, **kwargs) -> RestTransport:
    return RestTransport(client(kv_api, **kwargs), NAMESPACE_ID)


def test_listing_follows_cursors_1000_keys_a_page_and_reads_values_100_a_request(kv_state, kv_api):
    namespace = kv_state.namespaces[NAMESPACE_ID]
    for number in range(2500):
        namespace.put(f"order:{number:05d}", f'{{"n": {number}}}', {"v": number % 3}, 1_900_000_000 + number)
    pages = list(transport(kv_api).pages(None))
    assert [len(page) for page in pages] == [1000, 1000, 500]
    records = [record for page in pages for record in page]
    assert [r["key"] for r in records] == [f"order:{n:05d}" for n in range(2500)]
    assert records[7] == {"key": "order:00007", "value": '{"n": 7}', "value_encoding": "text",
                          "metadata": {"v": 1}, "expiration": 1_900_000_007}
    methods = [(method, path.split("?")[0].rsplit("/", 2)[-2:]) for method, path in kv_state.requests]
    assert methods.count(("GET", [NAMESPACE_ID, "keys"])) == 3
    assert methods.count(("POST", ["bulk", "get"])) == 25
    assert len(kv_state.requests) == 28, "no single-key reads for text values"


def test_prefix_limits_the_listing(kv_state, kv_api):
    namespace = kv_state.namespaces[NAMESPACE_ID]
    for key in ["lead:20261119:1", "lead:20261120:1", "lead:20261120:2", "lead:20261121:1", "order:1"]:
        namespace.put(key, "{}")
    keys = [r["key"] for page in transport(kv_api).pages("lead:20261120") for r in page]
    assert keys == ["lead:20261120:1", "lead:20261120:2"]


def test_nasty_keys_round_trip_through_bulk_get_and_single_reads(kv_state, kv_api):
    namespace = kv_state.namespaces[NAMESPACE_ID]
    for key in NASTY_KEYS:
        namespace.put(key, f"value of {key}")
    namespace.put("binary/../key?%", b"\xff\xfe\x00raw")  # forces single reads of this batch
    records = {r["key"]: r for page in transport(kv_api).pages(None) for r in page}
    assert set(records) == set(NASTY_KEYS) | {"binary/../key?%"}
    for key in NASTY_KEYS:
        assert records[key]["value"] == f"value of {key}" and records[key]["value_encoding"] == "text"
    assert records["binary/../key?%"] == {"key": "binary/../key?%", "value": "//4AcmF3", "value_encoding": "base64",
                                          "metadata": None, "expiration": None}
    single_reads = [path for method, path in kv_state.requests if "/values/" in path]
    assert "/values/binary%2F..%2Fkey%3F%25" in " ".join(single_reads), single_reads


def test_explicit_keys_are_read_in_order_and_missing_ones_skipped(kv_state, kv_api):
    namespace = kv_state.namespaces[NAMESPACE_ID]
    for key in ("k1", "k2", "k3"):
        namespace.put(key, key.upper(), {"m": key})
    records = [r for page in transport(kv_api).records_for_keys(["k3", "gone", "k1"]) for r in page]
    assert [(r["key"], r["value"], r["metadata"]) for r in records] == [("k3", "K3", {"m": "k3"}), ("k1", "K1", {"m": "k1"})]


def recording_sleeps(policy: RetryPolicy = FAST) -> tuple[RetryPolicy, list[float]]:
    """The policy with its sleep replaced by a list of the pauses it asked for."""
    pauses: list[float] = []
    return dataclasses.replace(policy, sleep=pauses.append), pauses


@pytest.mark.parametrize("retry_after, pause", [(1, 1.0), (7, 2.0), ("soon", 0.01)])
def test_429_waits_for_retry_after_capped_then_succeeds(kv_state, kv_api, retry_after, pause):
    kv_state.namespaces[NAMESPACE_ID].put("k", "v")
    kv_state.fail_next(429, times=2, retry_after=retry_after, path_contains="/keys")
    policy, pauses = recording_sleeps()
    records = [r for page in transport(kv_api, policy=policy).pages(None) for r in page]
    assert [r["key"] for r in records] == ["k"]
    # Retry-After in seconds, capped by max_retry_after_seconds (2); unreadable: the backoff of the attempt.
    assert pauses == [pause, pause if retry_after != "soon" else 0.02]


def test_5xx_backs_off_exponentially_and_gives_up_after_bounded_attempts(kv_state, kv_api):
    kv_state.namespaces[NAMESPACE_ID].put("k", "v")
    kv_state.fail_next(503, times=3, path_contains="/keys")
    policy, pauses = recording_sleeps()
    assert [r["key"] for page in transport(kv_api, policy=policy).pages(None) for r in page] == ["k"]
    assert pauses == [0.01, 0.02, 0.04]
    kv_state.fail_next(500, times=10, path_contains="/keys")
    pauses.clear()
    with pytest.raises(CloudflareAPIError, match="HTTP 500"):
        list(transport(kv_api, policy=policy).pages(None))
    assert len(kv_state.faults) == 10 - FAST.attempts
    assert pauses == [0.01, 0.02, 0.04], "no pause after the last attempt; the backoff is capped at 0.05"


def test_an_unreachable_api_is_named_by_host_after_bounded_attempts():
    policy, pauses = recording_sleeps()
    kv = CloudflareKVClient("http://127.0.0.1:9/client/v4", ACCOUNT_ID, API_TOKEN, policy=policy)
    with pytest.raises(httpx.ConnectError) as error:
        kv.list_keys(NAMESPACE_ID, cursor="secret-cursor")
    assert str(error.value).startswith("127.0.0.1:9 unreachable after 4 attempts")
    assert "secret-cursor" not in str(error.value) and API_TOKEN not in str(error.value)
    assert pauses == [0.01, 0.02, 0.04]


def test_403_reports_cloudflares_message_without_the_token(kv_api):
    with pytest.raises(CloudflareAPIError) as error:
        list(transport(kv_api, token="wrong-token-value").pages(None))
    assert str(error.value) == "Cloudflare API HTTP 403: Authentication error (code 10000) (CLOUDFLARE_API_TOKEN)"
    assert "wrong-token-value" not in str(error.value)


def test_missing_credentials_are_named():
    with pytest.raises(CloudflareAPIError, match="CLOUDFLARE_API_TOKEN is not set"):
        CloudflareKVClient("http://127.0.0.1:9", ACCOUNT_ID, None)


def test_namespaces_are_listed_across_pages(kv_state, kv_api):
    for number in range(150):
        kv_state.add_namespace(f"ns{number:03d}", f"TITLE_{number}")
    titles = [ns["title"] for ns in client(kv_api).list_namespaces()]
    assert len(titles) == 151 and "TITLE_149" in titles


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_budget_keeps_requests_within_the_window(kv_state, kv_api):
    kv_state.namespaces[NAMESPACE_ID].put("k", "v")
    clock = FakeClock()
    kv = client(kv_api, budget=RateBudget(limit=4, window=0.5, clock=clock, sleep=clock.sleep))
    sent_at = []
    for _ in range(10):
        kv.list_keys(NAMESPACE_ID)
        sent_at.append(clock.now - 100.0)
    # 4 requests a window: the 5th waits for the 1st to leave it, the 9th for the 5th.
    assert sent_at == [0.0] * 4 + [0.5] * 4 + [1.0] * 2
    assert clock.sleeps == [0.5, 0.5]


def test_every_client_shares_one_tls_context_that_refuses_an_untrusted_certificate(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = served.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert tls_context() is tls_context()  # built once per process
        with http_client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(f"https://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
