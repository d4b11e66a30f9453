"""The broker's own API (proto/switchboard/broker/v1/broker.proto) on a real `switchboard
serve`: REST/JSON with http.client and gRPC with Debian's grpcio (stubs generated at test time
from the same contract). Queue lifecycle, a send/receive/delete round trip with attributes,
long polling, dead-lettering after max receives and a redrive back, topic fan-out with a
filter policy, and bad input answered INVALID_ARGUMENT / NOT_FOUND naming the field or the
queue."""

import base64
import http.client
import json
import os
import threading
import time

import grpc
import pytest

import grpc_stubs

pb, pbg = grpc_stubs.generate(os.path.join(grpc_stubs.PROTO_DIR, "switchboard", "broker", "v1"),
                              ["broker.proto"], ["broker_pb2", "broker_pb2_grpc"])
from google.protobuf import wrappers_pb2  # noqa: E402  (after the stubs put protobuf in place)

TIMEOUT = 10


class Rest:
    """JSON over HTTP/1.1 to one server; returns (status, decoded body or None)."""

    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["content-type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, (json.loads(raw) if raw else None)

    def ok(self, method, path, body=None, status=200):
        st, js = self.call(method, path, body)
        assert st == status, f"{method} {path}: {st} {js}"
        return js

    def bad(self, method, path, body=None, status=400):
        """An error answer: (its JSON body, the fields of its violations)."""
        st, js = self.call(method, path, body)
        assert st == status, f"{method} {path}: {st} {js}"
        return js, violations(js)


@pytest.fixture
def server(server_factory):
    return server_factory(kind="switchboard")


@pytest.fixture
def rest(server):
    return Rest(server.port)


@pytest.fixture
def stub(server):
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield pbg.BrokerServiceStub(ch)
    ch.close()


def violations(js):
    """Field paths of a REST error's BadRequest details."""
    out = []
    for d in js.get("details", []):
        out += [v["field"] for v in d.get("fieldViolations", [])]
    return out


def test_queue_lifecycle(rest):
    q = rest.ok("POST", "/v1/queues", {"name": "orders", "config": {"visibilityTimeoutMs": 5000},
                                      "attributes": {"team": "billing"}})
    assert q["name"] == "orders"
    assert q["config"]["visibilityTimeoutMs"] == 5000
    assert q["attributes"] == {"team": "billing"}
    assert "createTime" in q
    # Creating again with the same configuration returns it; another configuration conflicts.
    assert rest.ok("POST", "/v1/queues", {"name": "orders", "config":
                                          {"visibilityTimeoutMs": 5000},
                                          "attributes": {"team": "billing"}})["name"] == "orders"
    st, js = rest.call("POST", "/v1/queues", {"name": "orders",
                                              "config": {"visibilityTimeoutMs": 7000}})
    assert st == 409 and js["code"] == 6 and "orders" in js["message"], js
    for name in ("orders-2", "other", "jobs.fifo"):
        rest.ok("POST", "/v1/queues", {"name": name})
    fifo = rest.ok("GET", "/v1/queues/jobs.fifo")
    assert fifo["config"]["fifo"] is True
    # Prefix and pagination.
    assert rest.ok("GET", "/v1/queues?prefix=orders")["names"] == ["orders", "orders-2"]
    page = rest.ok("GET", "/v1/queues?pageSize=2")
    assert page["names"] == ["jobs.fifo", "orders"] and page["nextPageToken"]
    page2 = rest.ok("GET", f"/v1/queues?pageSize=2&pageToken={page['nextPageToken']}")
    assert page2["names"] == ["orders-2", "other"]
    # Purge, delete, then it is gone.
    rest.ok("POST", "/v1/queues/orders/messages", {"messages": [{"text": "a"}, {"text": "b"}]})
    assert rest.ok("POST", "/v1/queues/orders:purge", {})["purged"] == "2"
    rest.ok("DELETE", "/v1/queues/orders", status=204)
    st, js = rest.call("GET", "/v1/queues/orders")
    assert st == 404 and js["code"] == 5 and js["message"] == "queue 'orders' not found"


def test_send_receive_delete_round_trip(rest):
    rest.ok("POST", "/v1/queues", {"name": "work"})
    binary = bytes(range(256))
    sent = rest.ok("POST", "/v1/queues/work/messages", {"messages": [
        {"text": "hello", "attributes": {"color": {"stringValue": "red"},
                                         "n": {"type": "Number", "stringValue": "5"},
                                         "blob": {"binaryValue": "AAEC"}}},
        {"body": base64.b64encode(binary).decode()},
    ]})["results"]
    assert len(sent) == 2 and all(r["messageId"] for r in sent)
    got = rest.ok("POST", "/v1/queues/work/messages:receive",
                  {"maxMessages": 10, "visibilityTimeoutMs": 30000})["messages"]
    assert [m["messageId"] for m in got] == [r["messageId"] for r in sent]
    a, b = got
    assert a["text"] == "hello" and "body" not in a
    assert a["attributes"] == {"color": {"type": "String", "stringValue": "red"},
                               "n": {"type": "Number", "stringValue": "5"},
                               "blob": {"type": "Binary", "binaryValue": "AAEC"}}
    assert base64.b64decode(b["body"]) == binary and "text" not in b
    assert a["receiveCount"] == 1 and a["receiptHandle"]
    # Nothing else is visible while both are leased.
    assert rest.ok("POST", "/v1/queues/work/messages:receive", {}).get("messages", []) == []
    # Delete a; make b visible again; its old receipt handle is then stale.
    assert rest.ok("POST", "/v1/queues/work/messages:delete",
                   {"receiptHandles": [a["receiptHandle"]]})["results"] == [{}]
    rest.ok("POST", "/v1/queues/work/messages:changeVisibility",
            {"receiptHandles": [b["receiptHandle"]], "visibilityTimeoutMs": 0})
    again = rest.ok("POST", "/v1/queues/work/messages:receive", {"maxMessages": 10})["messages"]
    assert [m["messageId"] for m in again] == [b["messageId"]]
    assert again[0]["receiveCount"] == 2
    st, js = rest.call("POST", "/v1/queues/work/messages:delete",
                       {"receiptHandles": [b["receiptHandle"]]})
    assert st == 400 and js["code"] == 9 and "stale" in js["message"], js
    rest.ok("POST", "/v1/queues/work/messages:delete",
            {"receiptHandles": [again[0]["receiptHandle"]]})
    stats = rest.ok("GET", "/v1/queues/work")["stats"]
    assert stats.get("visible", "0") == "0" and stats.get("inFlight", "0") == "0"
    assert stats["sent"] == "2" and stats["deleted"] == "2"


def test_long_poll(stub, rest):
    stub.CreateQueue(pb.CreateQueueRequest(name="lp"), timeout=TIMEOUT)
    # An empty queue answers after the wait, with nothing.
    t0 = time.monotonic()
    res = stub.ReceiveMessages(pb.ReceiveMessagesRequest(
        queue="lp", wait_time_ms=wrappers_pb2.UInt32Value(value=300)), timeout=TIMEOUT)
    assert len(res.messages) == 0 and time.monotonic() - t0 >= 0.25
    # A waiting receive returns as soon as a message arrives.
    out = {}

    def recv():
        t = time.monotonic()
        out["res"] = stub.ReceiveMessages(pb.ReceiveMessagesRequest(
            queue="lp", wait_time_ms=wrappers_pb2.UInt32Value(value=10000)), timeout=TIMEOUT + 10)
        out["elapsed"] = time.monotonic() - t

    th = threading.Thread(target=recv)
    th.start()
    time.sleep(0.3)
    rest.ok("POST", "/v1/queues/lp/messages", {"messages": [{"text": "ping"}]})
    th.join(15)
    assert not th.is_alive()
    assert [m.text for m in out["res"].messages] == ["ping"]
    assert out["elapsed"] < 5


def test_dead_letter_and_redrive(stub):
    stub.CreateQueue(pb.CreateQueueRequest(name="dlq"), timeout=TIMEOUT)
    stub.CreateQueue(pb.CreateQueueRequest(name="src", config=pb.QueueConfig(
        dead_letter_queue="dlq", max_receive_count=1)), timeout=TIMEOUT)
    entries = [pb.SendEntry(body=b"\x00payload-%d" % i,
                            attributes={"kind": pb.AttributeValue(string_value=k)})
               for i, k in enumerate(["a", "b", "a"])]
    sent = stub.SendMessages(pb.SendMessagesRequest(queue="src", messages=entries),
                             timeout=TIMEOUT).results
    zero = wrappers_pb2.UInt32Value(value=0)
    first = stub.ReceiveMessages(pb.ReceiveMessagesRequest(
        queue="src", max_messages=10, visibility_timeout_ms=zero), timeout=TIMEOUT)
    assert len(first.messages) == 3
    # The second receive exceeds max_receive_count: they move to the DLQ instead.
    again = stub.ReceiveMessages(pb.ReceiveMessagesRequest(queue="src", max_messages=10),
                                 timeout=TIMEOUT)
    assert len(again.messages) == 0
    assert list(stub.ListDeadLetterSources(pb.ListDeadLetterSourcesRequest(queue="dlq"),
                                           timeout=TIMEOUT).queues) == ["src"]
    # The move is durable in the dead-letter queue a moment after the receive answered.
    deadline = time.monotonic() + 10
    while True:
        peek = stub.PeekMessages(pb.PeekMessagesRequest(queue="dlq", max_messages=100),
                                 timeout=TIMEOUT).messages
        if len(peek) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [m.message_id for m in peek] == [r.message_id for r in sent]
    assert [m.body for m in peek] == [e.body for e in entries]  # byte-identical
    assert all(m.dead_letter.source_queue == "src" and m.dead_letter.receive_count >= 1
               and m.receipt_handle == "" for m in peek)
    only_a = stub.PeekMessages(pb.PeekMessagesRequest(
        queue="dlq", attribute_name="kind", attribute_value="a"), timeout=TIMEOUT).messages
    assert len(only_a) == 2
    task = stub.StartRedrive(pb.StartRedriveRequest(source_queue="dlq"), timeout=TIMEOUT)
    assert task.source_queue == "dlq" and task.handle
    deadline = time.monotonic() + 10
    while True:
        tasks = stub.ListRedrives(pb.ListRedrivesRequest(source_queue="dlq"),
                                  timeout=TIMEOUT).tasks
        t = [t for t in tasks if t.handle == task.handle][0]
        if t.state != pb.REDRIVE_STATE_RUNNING or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert t.state == pb.REDRIVE_STATE_COMPLETED and t.moved == 3
    back = stub.ReceiveMessages(pb.ReceiveMessagesRequest(queue="src", max_messages=10),
                                timeout=TIMEOUT).messages
    assert sorted(m.message_id for m in back) == sorted(r.message_id for r in sent)
    assert sorted(m.body for m in back) == sorted(e.body for e in entries)
    with pytest.raises(grpc.RpcError) as e:
        stub.CancelRedrive(pb.CancelRedriveRequest(handle=task.handle), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_topic_fan_out_with_filter(stub, rest):
    rest.ok("POST", "/v1/topics", {"name": "events"})
    for q in ("reds", "all"):
        rest.ok("POST", "/v1/queues", {"name": q})
    sub = rest.ok("POST", "/v1/topics/events/subscriptions",
                  {"queue": "reds", "filterPolicy": json.dumps({"color": ["red"]})})
    assert sub["id"] and sub["queue"] == "reds"
    stub.Subscribe(pb.SubscribeRequest(topic="events", queue="all"), timeout=TIMEOUT)
    subs = rest.ok("GET", "/v1/topics/events/subscriptions")["subscriptions"]
    assert sorted(s["queue"] for s in subs) == ["all", "reds"]
    for color in ("red", "blue"):
        res = rest.ok("POST", "/v1/topics/events:publish", {
            "text": color, "attributes": {"color": {"stringValue": color}}})
        assert res["messageId"]
    got = lambda q: [m.text for m in stub.ReceiveMessages(  # noqa: E731
        pb.ReceiveMessagesRequest(queue=q, max_messages=10), timeout=TIMEOUT).messages]
    assert got("reds") == ["red"]
    assert sorted(got("all")) == ["blue", "red"]
    assert rest.ok("GET", "/v1/topics/events")["subscriptionCount"] == "2"
    rest.ok("DELETE", f"/v1/subscriptions/{sub['id']}", status=204)
    assert len(rest.ok("GET", "/v1/subscriptions")["subscriptions"]) == 1
    # A bad filter policy names the field.
    st, js = rest.call("POST", "/v1/topics/events/subscriptions",
                       {"queue": "reds", "filterPolicy": "{not json"})
    assert st == 400 and violations(js) == ["filter_policy"], js
    st, js = rest.call("POST", "/v1/topics/nope:publish", {"text": "x"})
    assert st == 404 and "nope" in js["message"]


def test_bad_input(stub, rest):
    rest.ok("POST", "/v1/queues", {"name": "q"})
    st, js = rest.call("POST", "/v1/queues", {"name": "bad name!"})
    assert st == 400 and violations(js) == ["name"], js
    st, js = rest.call("POST", "/v1/queues/q/messages", {"messages": []})
    assert st == 400 and violations(js) == ["messages"], js
    st, js = rest.call("POST", "/v1/queues/q/messages:delete", {"receiptHandles": ["garbage"]})
    assert st == 400 and violations(js) == ["receipt_handles[0]"], js
    st, js = rest.call("POST", "/v1/queues/q/messages:receive", {"waitTimeMs": 60000})
    assert st == 400 and violations(js) == ["wait_time_ms"], js
    st, js = rest.call("POST", "/v1/queues", {"name": "x", "config": {"fifo": True}})
    assert st == 400 and violations(js) == ["config.fifo"], js
    st, js = rest.call("POST", "/v1/queues/missing/messages", {"messages": [{"text": "x"}]})
    assert st == 404 and js["message"] == "queue 'missing' not found", js
    with pytest.raises(grpc.RpcError) as e:
        stub.ReceiveMessages(pb.ReceiveMessagesRequest(queue="q", max_messages=11),
                             timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_messages" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.GetQueue(pb.GetQueueRequest(name="missing"), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "queue 'missing' not found"
    with pytest.raises(grpc.RpcError) as e:
        stub.SendMessages(pb.SendMessagesRequest(queue="q", messages=[pb.SendEntry(
            text="x", attributes={":sys": pb.AttributeValue(string_value="v")})]),
            timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'messages[0].attributes[":sys"]' in e.value.details()


def test_disk_reserve_refuses_sends(server_factory):
    """A reserve larger than any disk: queues can be created (the catalog is not held back),
    sends are refused RESOURCE_EXHAUSTED with nothing stored, and the server keeps serving."""
    srv = server_factory("--disk-reserve-mb", str(1 << 40), kind="switchboard")
    rest = Rest(srv.port)
    rest.ok("POST", "/v1/queues", {"name": "full"})
    st, js = rest.call("POST", "/v1/queues/full/messages", {"messages": [{"text": "x"}]})
    assert st == 429 and js["code"] == 8, (st, js)
    q = rest.ok("GET", "/v1/queues/full")
    assert int(q.get("stats", {}).get("visible", "0")) == 0, q
