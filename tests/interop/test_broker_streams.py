"""Streams and pub/sub in the broker's own API (proto/switchboard/broker/v1/broker.proto) on a
real `switchboard serve`: REST/JSON with http.client (Server-Sent Events for the server
streams) and gRPC with Debian's grpcio. Stream lifecycle, appends by key and by partition,
reads from an offset, the beginning, the end and a time, long polls, committed offsets, group
reads with pending lists, TailStream following partitions and stopping when the client goes
away, pub/sub with channels and patterns, and a slow subscriber dropped RESOURCE_EXHAUSTED.
Bad input is INVALID_ARGUMENT naming the field, a missing stream NOT_FOUND."""

import base64
import http.client
import json
import os
import queue
import threading
import time
import urllib.parse

import grpc
import pytest

import grpc_stubs
from test_broker_api import Rest

pb, pbg = grpc_stubs.generate(os.path.join(grpc_stubs.PROTO_DIR, "switchboard", "broker", "v1"),
                              ["broker.proto"], ["broker_pb2", "broker_pb2_grpc"])
from google.protobuf import wrappers_pb2  # noqa: E402  (after the stubs put protobuf in place)

TIMEOUT = 10


class Sse:
    """A Server-Sent Events stream over its own connection; next() returns the next event's
    decoded data. The response head arrives with the first event."""

    def __init__(self, port, path):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.conn.request("GET", path, headers={"accept": "text/event-stream"})
        self._resp = None

    @property
    def resp(self):
        if self._resp is None:
            self._resp = self.conn.getresponse()
        return self._resp

    def next(self):
        data = None
        while True:
            line = self.resp.fp.readline()
            assert line, "the event stream ended"
            line = line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return data

    def close(self):
        self.conn.sock.close()
        self.conn.close()


@pytest.fixture
def server(server_factory):
    # HTTP/1.1 event streams whose client left are only noticed on the next write, or when
    # the shutdown's grace period ends: keep that short.
    return server_factory("--shutdown-grace-ms", "2000", kind="switchboard")


@pytest.fixture
def rest(server):
    return Rest(server.port)


@pytest.fixture
def stub(server):
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield pbg.BrokerServiceStub(ch)
    ch.close()


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, timeout=TIMEOUT, **kw)
    return e.value


def test_stream_lifecycle(rest):
    s = rest.ok("POST", "/v1/streams", {"name": "clicks", "config": {"partitions": 3,
                                                                     "retentionMs": 60000}})
    assert s["name"] == "clicks" and s["config"]["partitions"] == 3
    assert s["config"]["retentionMs"] == "60000" and "createTime" in s
    assert [p.get("partition", 0) for p in s["partitions"]] == [0, 1, 2]
    # The same configuration again returns it; another one conflicts.
    rest.ok("POST", "/v1/streams", {"name": "clicks", "config": {"partitions": 3,
                                                                 "retentionMs": 60000}})
    st, js = rest.call("POST", "/v1/streams", {"name": "clicks", "config": {"partitions": 4}})
    assert st == 409 and js["code"] == 6 and "clicks" in js["message"], js
    rest.ok("POST", "/v1/streams", {"name": "clicks-2"})
    rest.ok("POST", "/v1/streams", {"name": "other"})
    assert rest.ok("GET", "/v1/streams?prefix=clicks")["names"] == ["clicks", "clicks-2"]
    page = rest.ok("GET", "/v1/streams?pageSize=2")
    assert page["names"] == ["clicks", "clicks-2"] and page["nextPageToken"] == "clicks-2"
    assert rest.ok("GET", "/v1/streams?pageToken=clicks-2")["names"] == ["other"]
    assert rest.ok("GET", "/v1/streams/clicks-2")["config"]["partitions"] == 1
    rest.ok("DELETE", "/v1/streams/clicks", status=204)
    js, _ = rest.bad("GET", "/v1/streams/clicks", status=404)
    assert js["code"] == 5 and js["message"] == "stream 'clicks' not found"
    rest.bad("DELETE", "/v1/streams/clicks", status=404)
    _, fields = rest.bad("POST", "/v1/streams", {"name": "bad name"})
    assert fields == ["name"]
    _, fields = rest.bad("POST", "/v1/streams", {"name": "s.fifo"})
    assert fields == ["name"]
    _, fields = rest.bad("POST", "/v1/streams", {"name": "big", "config": {"partitions": 300}})
    assert fields == ["config.partitions"]


def test_append_and_read(rest, stub):
    rest.ok("POST", "/v1/streams", {"name": "orders", "config": {"partitions": 4}})
    t0 = int(time.time() * 1000)
    res = rest.ok("POST", "/v1/streams/orders/records", {"records": [
        {"keyText": "user-7", "text": "a"},
        {"keyText": "user-7", "text": "b", "headers": {"kind": {"stringValue": "x"}}},
        {"value": base64.b64encode(b"\x00\xff").decode(), "partition": 3,
         "timestampMs": str(t0 + 3600_000)},
    ]})["results"]
    assert [r.get("code", 0) for r in res] == [0, 0, 0]
    # One key, one partition, consecutive offsets.
    p = res[0].get("partition", 0)
    assert res[1].get("partition", 0) == p and int(res[1].get("offset", 0)) == \
        int(res[0].get("offset", 0)) + 1
    assert res[2]["partition"] == 3
    # From the beginning of the key's partition: both records, with key and headers.
    got = rest.ok("GET", f"/v1/streams/orders/partitions/{p}/records?start=POSITION_BEGINNING")
    recs = got["records"]
    assert [r["text"] for r in recs] == ["a", "b"] and recs[0]["keyText"] == "user-7"
    assert recs[1]["headers"] == {"kind": {"type": "String", "stringValue": "x"}}
    assert got["nextOffset"] == "2" and got["endOffset"] == "2"
    # From an offset, and at most one record.
    got = rest.ok("GET", f"/v1/streams/orders/partitions/{p}/records?offset=1&maxRecords=1")
    assert [r["text"] for r in got["records"]] == ["b"]
    # The latest position reads nothing and continues at the end.
    got = rest.ok("GET", f"/v1/streams/orders/partitions/{p}/records?start=POSITION_LATEST")
    assert got.get("records", []) == [] and got["nextOffset"] == "2"
    # Binary values come back as bytes; a time finds the producer's timestamp.
    got = rest.ok("GET", "/v1/streams/orders/partitions/3/records")["records"]
    assert base64.b64decode(got[0]["value"]) == b"\x00\xff" and "text" not in got[0]
    got = rest.ok("GET", "/v1/streams/orders/partitions/3/records"
                  f"?start=POSITION_TIME&timeMs={t0 + 3000_000}")["records"]
    assert len(got) == 1
    got = rest.ok("GET", "/v1/streams/orders/partitions/3/records"
                  f"?start=POSITION_TIME&timeMs={t0 + 7200_000}")
    assert got.get("records", []) == [] and got["nextOffset"] == "1"
    # The stream's bounds.
    parts = rest.ok("GET", "/v1/streams/orders")["partitions"]
    assert parts[p].get("nextOffset") == "2" and parts[3].get("nextOffset") == "1"
    # Errors: a missing stream, a partition it does not have, an offset past the end.
    js, _ = rest.bad("POST", "/v1/streams/nope/records", {"records": [{"text": "x"}]}, 404)
    assert js["message"] == "stream 'nope' not found"
    rest.bad("GET", "/v1/streams/nope/partitions/0/records", status=404)
    js, fields = rest.bad("GET", "/v1/streams/orders/partitions/4/records")
    assert fields == ["partition"] and "4 partition(s)" in js["message"], js
    _, fields = rest.bad("POST", "/v1/streams/orders/records",
                         {"records": [{"text": "x"}, {"text": "y", "partition": 9}]})
    assert fields == ["records[1].partition"]
    js, fields = rest.bad("GET", f"/v1/streams/orders/partitions/{p}/records?offset=3")
    assert fields == ["offset"] and "past the end" in js["message"]
    _, fields = rest.bad("POST", "/v1/streams/orders/records",
                         {"records": [{"key": "AA==", "keyText": "k", "text": "x"}]})
    assert fields == ["records[0].key_text"]
    _, fields = rest.bad("POST", "/v1/streams/orders/records", {"records": []})
    assert fields == ["records"]
    e = rpc_error(stub.ReadRecords, pb.ReadRecordsRequest(stream="orders", partition=9))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "partition" in e.details()
    e = rpc_error(stub.ReadRecords, pb.ReadRecordsRequest(stream="orders", wait_time_ms=30000))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "wait_time_ms" in e.details()
    e = rpc_error(stub.AppendRecords, pb.AppendRecordsRequest(
        stream="gone", records=[pb.AppendEntry(text="x")]))
    assert e.code() == grpc.StatusCode.NOT_FOUND


def test_read_long_poll(stub):
    stub.CreateStream(pb.CreateStreamRequest(name="lp"), timeout=TIMEOUT)
    t0 = time.monotonic()
    res = stub.ReadRecords(pb.ReadRecordsRequest(stream="lp", start=pb.POSITION_LATEST,
                                                 wait_time_ms=300), timeout=TIMEOUT)
    assert len(res.records) == 0 and time.monotonic() - t0 >= 0.25
    out = {}

    def read():
        out["res"] = stub.ReadRecords(pb.ReadRecordsRequest(
            stream="lp", offset=res.next_offset, wait_time_ms=10000), timeout=TIMEOUT + 10)

    th = threading.Thread(target=read)
    th.start()
    time.sleep(0.3)
    t1 = time.monotonic()
    stub.AppendRecords(pb.AppendRecordsRequest(stream="lp", records=[pb.AppendEntry(text="hi")]),
                       timeout=TIMEOUT)
    th.join(15)
    assert not th.is_alive() and time.monotonic() - t1 < 5
    assert [r.text for r in out["res"].records] == ["hi"]


def test_offsets_and_groups(stub, rest):
    stub.CreateStream(pb.CreateStreamRequest(name="jobs", config=pb.StreamConfig(partitions=2)),
                      timeout=TIMEOUT)
    entries = [pb.AppendEntry(text=f"j{i}", partition=wrappers_pb2.UInt32Value(value=0))
               for i in range(5)]
    stub.AppendRecords(pb.AppendRecordsRequest(stream="jobs", records=entries), timeout=TIMEOUT)
    # Committed offsets and lag.
    got = stub.CommitOffsets(pb.CommitOffsetsRequest(
        stream="jobs", group="billing", offsets=[pb.PartitionOffset(partition=0, offset=2)]),
        timeout=TIMEOUT)
    assert [(o.partition, o.offset) for o in got.offsets] == [(0, 2)]
    got = rest.ok("GET", "/v1/streams/jobs/groups/billing/offsets")["offsets"]
    assert got == [{"offset": "2"}]
    groups = rest.ok("GET", "/v1/streams/jobs")["groups"]
    assert groups == [{"name": "billing", "committed": [{"offset": "2"}], "lag": "3"}]
    assert rest.ok("GET", "/v1/streams/jobs/groups/nobody/offsets") == {}
    _, fields = rest.bad("POST", "/v1/streams/jobs/groups/billing:commit",
                         {"offsets": [{"partition": 0, "offset": 6}]})
    assert fields == ["offsets[0].offset"]
    _, fields = rest.bad("POST", "/v1/streams/jobs/groups/billing:commit",
                         {"offsets": [{"partition": 2, "offset": 0}]})
    assert fields == ["offsets[0].partition"]
    _, fields = rest.bad("POST", "/v1/streams/jobs/groups/billing:commit",
                         {"offsets": [{"offset": 1}, {"offset": 1}]})
    assert fields == ["offsets[1].partition"]
    rest.bad("POST", "/v1/streams/nope/groups/billing:commit",
             {"offsets": [{"offset": 1}]}, status=404)
    # Group reads: records no member has received, on the pending list until acknowledged.
    read = stub.ReadGroup(pb.ReadGroupRequest(stream="jobs", group="workers", consumer="w1",
                                              max_records=3), timeout=TIMEOUT).records
    assert [r.text for r in read] == ["j0", "j1", "j2"] and all(r.deliveries == 1 for r in read)
    read2 = stub.ReadGroup(pb.ReadGroupRequest(stream="jobs", group="workers", consumer="w2"),
                           timeout=TIMEOUT).records
    assert [r.text for r in read2] == ["j3", "j4"]
    pend = stub.ListPending(pb.ListPendingRequest(stream="jobs", group="workers"),
                            timeout=TIMEOUT)
    assert pend.total == 5 and [(e.offset, e.consumer) for e in pend.entries][:3] == \
        [(0, "w1"), (1, "w1"), (2, "w1")]
    acked = stub.Ack(pb.AckRequest(stream="jobs", group="workers", offsets=[0, 1, 99]),
                     timeout=TIMEOUT)
    assert acked.acknowledged == 2
    # w1 went quiet: w2 claims its record idle for a moment.
    time.sleep(0.2)
    claimed = stub.Claim(pb.ClaimRequest(stream="jobs", group="workers", consumer="w2",
                                         min_idle_ms=100, max_records=10), timeout=TIMEOUT)
    assert [r.offset for r in claimed.records if r.offset == 2] == [2]
    assert all(r.deliveries == 2 for r in claimed.records)
    pend = rest.ok("GET", "/v1/streams/jobs/groups/workers/pending")
    assert pend["total"] == "3" and {e["consumer"] for e in pend["entries"]} == {"w2"}
    # Nothing new for the group: a short long poll answers empty.
    empty = stub.ReadGroup(pb.ReadGroupRequest(stream="jobs", group="workers", consumer="w1",
                                               wait_time_ms=200), timeout=TIMEOUT)
    assert len(empty.records) == 0
    # Errors name the field.
    _, fields = rest.bad("POST", "/v1/streams/jobs/groups/workers:read",
                         {"consumer": "w1", "partition": 2})
    assert fields == ["partition"]
    _, fields = rest.bad("POST", "/v1/streams/jobs/groups/workers:read", {})
    assert fields == ["consumer"]
    _, fields = rest.bad("POST", "/v1/streams/jobs/groups/workers:ack", {"offsets": []})
    assert fields == ["offsets"]
    rest.bad("POST", "/v1/streams/nope/groups/workers:ack", {"offsets": [1]}, status=404)


def test_tail_stream_sse(server, rest):
    rest.ok("POST", "/v1/streams", {"name": "feed", "config": {"partitions": 2}})
    rest.ok("POST", "/v1/streams/feed/records", {"records": [
        {"text": "old-0", "partition": 0}, {"text": "old-1", "partition": 1}]})
    sse = Sse(server.port, "/v1/streams/feed/records:tail?start=POSITION_BEGINNING")
    try:
        assert sse.resp.status == 200
        assert sse.resp.getheader("content-type").startswith("text/event-stream")
        assert sorted(sse.next()["text"] for _ in range(2)) == ["old-0", "old-1"]
        rest.ok("POST", "/v1/streams/feed/records", {"records": [{"text": "new",
                                                                  "partition": 1}]})
        ev = sse.next()
        assert ev["text"] == "new" and ev["partition"] == 1 and ev["offset"] == "1"
    finally:
        sse.close()
    # Only partition 1, after what it holds.
    sse = Sse(server.port, "/v1/streams/feed/records:tail?partitions=1&start=POSITION_OFFSET"
                           "&offset=2")
    try:
        rest.ok("POST", "/v1/streams/feed/records", {"records": [
            {"text": "skip", "partition": 0}, {"text": "take", "partition": 1}]})
        assert sse.next()["text"] == "take"
    finally:
        sse.close()
    # Errors come before the stream starts.
    js, fields = rest.bad("GET", "/v1/streams/feed/records:tail?partitions=2")
    assert fields == ["partitions[0]"], js
    rest.bad("GET", "/v1/streams/nope/records:tail", status=404)
    js, fields = rest.bad("GET", "/v1/streams/feed/records:tail?start=POSITION_OFFSET&offset=5")
    assert fields == ["offset"]
    # The server still serves after the clients went away.
    assert rest.ok("GET", "/v1/streams/feed")["name"] == "feed"


def test_tail_stream_grpc(stub):
    stub.CreateStream(pb.CreateStreamRequest(name="ticks", config=pb.StreamConfig(partitions=3)),
                      timeout=TIMEOUT)
    first = [pb.AppendEntry(text=f"a{p}", partition=wrappers_pb2.UInt32Value(value=p))
             for p in range(3)]
    stub.AppendRecords(pb.AppendRecordsRequest(stream="ticks", records=first), timeout=TIMEOUT)
    # A group with a committed offset on partition 1 only starts there, and at the beginning
    # of the others.
    stub.CommitOffsets(pb.CommitOffsetsRequest(
        stream="ticks", group="g", offsets=[pb.PartitionOffset(partition=1, offset=1)]),
        timeout=TIMEOUT)
    call = stub.TailStream(pb.TailStreamRequest(stream="ticks", group="g"), timeout=30)
    got = queue.Queue()

    def reader():
        try:
            for rec in call:
                got.put((rec.partition, rec.offset, rec.text))
        except grpc.RpcError as e:
            got.put(e.code())

    th = threading.Thread(target=reader)
    th.start()
    try:
        first_seen = {got.get(timeout=TIMEOUT) for _ in range(2)}
        assert first_seen == {(0, 0, "a0"), (2, 0, "a2")}
        more = [pb.AppendEntry(text=f"b{p}", partition=wrappers_pb2.UInt32Value(value=p))
                for p in range(3)]
        stub.AppendRecords(pb.AppendRecordsRequest(stream="ticks", records=more),
                           timeout=TIMEOUT)
        seen = {got.get(timeout=TIMEOUT) for _ in range(3)}
        assert seen == {(0, 1, "b0"), (1, 1, "b1"), (2, 1, "b2")}
    finally:
        call.cancel()
        th.join(10)
    assert not th.is_alive() and got.get(timeout=1) == grpc.StatusCode.CANCELLED
    # From a time: nothing older than it.
    t = int(time.time() * 1000) + 1
    time.sleep(0.05)
    stub.AppendRecords(pb.AppendRecordsRequest(stream="ticks", records=[pb.AppendEntry(
        text="late", partition=wrappers_pb2.UInt32Value(value=2))]), timeout=TIMEOUT)
    call = stub.TailStream(pb.TailStreamRequest(stream="ticks", start=pb.POSITION_TIME,
                                                time_ms=t), timeout=30)
    try:
        assert next(call).text == "late"
    finally:
        call.cancel()
    # Errors end the stream at once.
    for req, code in [(pb.TailStreamRequest(stream="nope"), grpc.StatusCode.NOT_FOUND),
                      (pb.TailStreamRequest(stream="ticks", partitions=[7]),
                       grpc.StatusCode.INVALID_ARGUMENT),
                      (pb.TailStreamRequest(stream="ticks", partitions=[1, 1]),
                       grpc.StatusCode.INVALID_ARGUMENT),
                      (pb.TailStreamRequest(stream="ticks", group="a/b"),
                       grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as e:
            list(stub.TailStream(req, timeout=TIMEOUT))
        assert e.value.code() == code, req
    # A stream deleted under a tail ends it NOT_FOUND.
    call = stub.TailStream(pb.TailStreamRequest(stream="ticks"), timeout=30)
    time.sleep(0.3)
    stub.DeleteStream(pb.DeleteStreamRequest(name="ticks"), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as e:
        list(call)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def subscribe(stub, **kw):
    """Opens SubscribeChannels and returns the call once its subscriptions are in place."""
    call = stub.SubscribeChannels(pb.SubscribeChannelsRequest(**kw), timeout=60)
    ev = next(call)
    assert ev.HasField("subscribed"), ev
    return call, ev.subscribed


def test_pubsub(stub, rest):
    call, sub = subscribe(stub, channels=["news.sports"], patterns=["news.*", "x?"])
    try:
        assert (sub.channels, sub.patterns) == (1, 2)
        assert stub.PublishChannel(pb.PublishChannelRequest(channel="news.sports", text="goal"),
                                   timeout=TIMEOUT).receivers == 2
        assert rest.ok("POST", "/v1/channels/xy:publish", {"data": "AAE="})["receivers"] == "1"
        assert rest.ok("POST", "/v1/channels/other:publish", {"text": "nobody"}) == {}
        got = [next(call).message for _ in range(3)]
        assert [(m.channel, m.pattern, m.text) for m in got[:2]] == \
            [("news.sports", "", "goal"), ("news.sports", "news.*", "goal")]
        assert (got[2].channel, got[2].pattern, got[2].data) == ("xy", "x?", b"\x00\x01")
        stats = stub.GetPubSubStats(pb.GetPubSubStatsRequest(), timeout=TIMEOUT)
        assert (stats.subscribers, stats.channels, stats.patterns) == (1, 1, 2)
        assert stats.published == 3 and stats.delivered == 3
    finally:
        call.cancel()
    # The subscriber is gone once the client is.
    deadline = time.monotonic() + 10
    while rest.ok("GET", "/v1/pubsub/stats").get("subscribers", "0") != "0":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Server-Sent Events for REST clients.
    sse = Sse(rest.port, "/v1/channels:subscribe?channels=alerts")
    try:
        assert sse.next() == {"subscribed": {"channels": 1}}
        rest.ok("POST", "/v1/channels/alerts:publish", {"text": "fire"})
        assert sse.next() == {"message": {"channel": "alerts", "text": "fire"}}
    finally:
        sse.close()
    _, fields = rest.bad("GET", "/v1/channels:subscribe")
    assert fields == ["channels"]
    _, fields = rest.bad("GET", "/v1/channels:subscribe?channels=a&bufferBytes=10")
    assert fields == ["buffer_bytes"]
    _, fields = rest.bad("POST", "/v1/channels/a:publish", {"text": "x", "data": "AA=="})
    assert fields == ["text"]


def test_slow_subscriber_is_dropped(stub, rest):
    """A subscriber that stops reading fills the transport, then its 1 KiB buffer: the broker
    drops it, counts the drop, and its stream ends RESOURCE_EXHAUSTED. (grpcio surfaces an error
    status before messages it still had buffered, so how many arrive first is not checked.)"""
    slow, _ = subscribe(stub, channels=["firehose"], buffer_bytes=1024)
    fast = Sse(rest.port, "/v1/channels:subscribe?patterns=fire*")
    try:
        assert "subscribed" in fast.next()
        payload = b"x" * 32768
        dropped = False
        for i in range(4000):
            stub.PublishChannel(pb.PublishChannelRequest(channel="firehose", data=payload),
                                timeout=TIMEOUT)
            # The fast subscriber keeps up and is never dropped.
            assert fast.next()["message"]["channel"] == "firehose"
            if i % 20 == 19 and stub.GetPubSubStats(pb.GetPubSubStatsRequest(),
                                                    timeout=TIMEOUT).dropped == 1:
                dropped = True
                break
        assert dropped, "the slow subscriber was never dropped"
        received = 0
        with pytest.raises(grpc.RpcError) as e:
            for ev in slow:
                assert ev.message.data == payload
                received += 1
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "read too slowly" in e.value.details()
        assert received < i + 1
        stats = rest.ok("GET", "/v1/pubsub/stats")
        assert stats["dropped"] == "1" and stats["subscribers"] == "1"
    finally:
        slow.cancel()
        fast.close()


def test_topic_fans_out_to_a_stream(stub, rest):
    """A topic's subscription may target a stream: copies are appended under the routing key,
    next to queue copies, and filters apply as for queues."""
    rest.ok("POST", "/v1/topics", {"name": "prices"})
    rest.ok("POST", "/v1/streams", {"name": "ticks", "config": {"partitions": 4}})
    rest.ok("POST", "/v1/queues", {"name": "all"})
    sub = rest.ok("POST", "/v1/topics/prices/subscriptions",
                  {"stream": "ticks", "filterPolicy": json.dumps({"venue": ["x"]})})
    assert sub["stream"] == "ticks" and "queue" not in sub
    stub.Subscribe(pb.SubscribeRequest(topic="prices", queue="all"), timeout=TIMEOUT)
    subs = rest.ok("GET", "/v1/topics/prices/subscriptions")["subscriptions"]
    assert sorted((s.get("queue", ""), s.get("stream", "")) for s in subs) == \
        [("", "ticks"), ("all", "")]
    for i, (key, venue) in enumerate([("ACME", "x"), ("ACME", "x"), ("INIT", "y")]):
        res = rest.ok("POST", "/v1/topics/prices:publish", {
            "text": f"{key}-{i}", "routingKey": key,
            "attributes": {"venue": {"stringValue": venue}}})
        assert res["deliveries"] == ("2" if venue == "x" else "1"), res
    # Both ACME copies in the key's partition, in order; the filtered one is absent.
    parts = rest.ok("GET", "/v1/streams/ticks")["partitions"]
    assert sum(int(p.get("nextOffset", "0")) for p in parts) == 2
    p = [i for i, part in enumerate(parts) if part.get("nextOffset")][0]
    recs = rest.ok("GET", f"/v1/streams/ticks/partitions/{p}/records")["records"]
    assert [(r["keyText"], r["text"]) for r in recs] == [("ACME", "ACME-0"), ("ACME", "ACME-1")]
    assert recs[0]["headers"]["venue"]["stringValue"] == "x"
    # The stream target is checked like a queue.
    js, fields = rest.bad("POST", "/v1/topics/prices/subscriptions",
                          {"stream": "ticks", "queue": "all"})
    assert fields == ["stream"], js
    _, fields = rest.bad("POST", "/v1/topics/prices/subscriptions", {})
    assert fields == ["queue"]
    js, _ = rest.bad("POST", "/v1/topics/prices/subscriptions", {"stream": "nope"}, status=404)
    assert "nope" in js["message"]
    rest.ok("DELETE", f"/v1/subscriptions/{sub['id']}", status=204)
    rest.ok("POST", "/v1/topics/prices:publish", {"text": "after", "routingKey": "ACME",
                                                  "attributes": {"venue": {"stringValue": "x"}}})
    parts = rest.ok("GET", "/v1/streams/ticks")["partitions"]
    assert sum(int(p.get("nextOffset", "0")) for p in parts) == 2


def test_trpc_subscriptions(server, rest):
    """The server streams are tRPC subscriptions too (Server-Sent Events in tRPC's framing)."""
    rest.ok("POST", "/v1/streams", {"name": "trail"})
    rest.ok("POST", "/v1/streams/trail/records", {"records": [{"text": "one"}]})

    def path(proc, inp):
        return f"/trpc/{proc}?input=" + urllib.parse.quote(json.dumps(inp))

    sse = Sse(server.port, path("tailStream", {"stream": "trail", "start": "POSITION_BEGINNING"}))
    try:
        assert sse.next() == {}  # tRPC's "connected" event
        assert sse.next()["text"] == "one"
        rest.ok("POST", "/v1/streams/trail/records", {"records": [{"text": "two"}]})
        assert sse.next()["text"] == "two"
    finally:
        sse.close()
    sse = Sse(server.port, path("subscribeChannels", {"patterns": ["t*"]}))
    try:
        assert sse.next() == {}
        assert sse.next() == {"subscribed": {"patterns": 1}}
        rest.ok("POST", "/v1/channels/topic-1:publish", {"text": "hey"})
        assert sse.next() == {"message": {"channel": "topic-1", "pattern": "t*", "text": "hey"}}
    finally:
        sse.close()
    sse = Sse(server.port, path("tailStream", {"stream": "nope"}))
    try:
        assert sse.next() == {}
        err = sse.next()
        assert err["data"]["code"] == "NOT_FOUND" and "nope" in err["message"], err
    finally:
        sse.close()
