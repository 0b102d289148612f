"""The local sender: GitHub's documented signature, and answers counted over real HTTP against a loopback
receiver that fails some requests the way an overloaded Worker would."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading

import orjson

from dlt_platform.local.loopback import JSONHandler, LoopbackServer
from dlt_platform.source_types.webhook.send_local import github_delivery, github_signature, send


def test_the_signature_is_githubs_documented_example():
    # docs.github.com, "Validating webhook deliveries": this secret and payload give this signature.
    assert github_signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


class _Receiver(JSONHandler):
    def do_POST(self) -> None:
        state = self.server.owner
        body = self.read_body()
        delivery_id = self.headers["X-GitHub-Delivery"]
        assert self.headers["X-Hub-Signature-256"] == github_signature("secret", body)
        with state["lock"]:
            attempts = state["attempts"][delivery_id] = state["attempts"][delivery_id] + 1
            if delivery_id in state["fail_after_keeping"] and attempts == 1:
                state["kept"].add(delivery_id)  # kept, but the answer is lost
                return self.send_body(503, {"error": "unavailable", "reason": "unavailable"})
            duplicate = delivery_id in state["kept"]
            state["kept"].add(delivery_id)
        self.send_body(200, {"delivery_id": delivery_id, "duplicate": duplicate})


def test_answers_are_counted_and_a_lost_answer_is_retried_without_doubling():
    deliveries = [github_delivery("secret", n) for n in range(30)]
    state = {"lock": threading.Lock(), "attempts": collections.Counter(), "kept": set(),
             "fail_after_keeping": {deliveries[3].delivery_id, deliveries[9].delivery_id}}
    with LoopbackServer(_Receiver, state) as server:
        summary = send(f"{server.url}/hooks/github_events", deliveries + [deliveries[0]], concurrency=8)
    assert summary.answers == collections.Counter({(200, "accepted"): 30, (200, "duplicate"): 1})
    assert summary.retried == collections.Counter({(503, "unavailable"): 2})
    assert sorted(summary.accepted_ids) == sorted(d.delivery_id for d in deliveries)
    assert orjson.loads(deliveries[0].body)["repository"]["full_name"].startswith("acme/")


def test_send_works_where_an_event_loop_already_runs():
    # A notebook, or Playwright's sync API in the same test session, keeps a loop running in the main thread.
    deliveries = [github_delivery("secret", n) for n in range(5)]
    state = {"lock": threading.Lock(), "attempts": collections.Counter(), "kept": set(), "fail_after_keeping": set()}

    async def inside_a_loop():
        with LoopbackServer(_Receiver, state) as server:
            return send(f"{server.url}/hooks/github_events", deliveries, concurrency=2)

    # The loop runs in a thread of its own: this test session may itself hold a running loop (Playwright).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        summary = pool.submit(asyncio.run, inside_a_loop()).result()
    assert summary.answers == collections.Counter({(200, "accepted"): 5})
