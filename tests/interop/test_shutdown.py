"""Stopping `switchboard serve` while clients long-poll or follow streams: SIGTERM ends every
long poll at once (each held request answers 200 with no messages) and every open tail and
channel subscription (UNAVAILABLE), and the server exits well within its grace period instead
of holding the shutdown until the polls' deadlines or the grace period's end."""
import http.client
import json
import threading
import time

WAIT_MS = 20000


def call(port, method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body) if body is not None else None
    conn.request(method, path, body=data, headers={"content-type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, (json.loads(raw) if raw else None)


def test_sigterm_ends_long_polls(server_factory):
    server = server_factory(kind="switchboard")
    port = server.port
    assert call(port, "POST", "/v1/queues", {"name": "idle"})[0] == 200
    results = []

    def poll():
        t0 = time.monotonic()
        try:
            st, js = call(port, "POST", "/v1/queues/idle/messages:receive",
                          {"maxMessages": 1, "waitTimeMs": WAIT_MS})
            results.append((st, js, time.monotonic() - t0))
        except Exception as e:  # noqa: BLE001 - a reset connection is the failure shown
            results.append((None, repr(e), time.monotonic() - t0))

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for t in pollers:
        t.start()
    time.sleep(0.7)  # the polls are waiting in the broker
    t0 = time.monotonic()
    server.send_signal()
    rc = server.wait(15)
    stopped = time.monotonic() - t0
    for t in pollers:
        t.join(15)
    server.check_clean(rc)
    assert stopped < 5, f"shutdown took {stopped:.1f}s with long polls waiting"
    assert len(results) == 3
    for st, js, took in results:
        assert st == 200, f"long poll got {st} {js}"
        assert not (js or {}).get("messages"), js
        assert took < 5, f"a long poll answered after {took:.1f}s"


def test_sigterm_ends_open_streams(server_factory):
    """A gRPC TailStream and a SubscribeChannels stream end UNAVAILABLE ("the server is
    shutting down", which gRPC clients treat as retryable) instead of holding the shutdown
    through the grace period."""
    import os

    import grpc

    import grpc_stubs
    pb, pbg = grpc_stubs.generate(
        os.path.join(grpc_stubs.PROTO_DIR, "switchboard", "broker", "v1"), ["broker.proto"],
        ["broker_pb2", "broker_pb2_grpc"])
    server = server_factory(kind="switchboard")
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pbg.BrokerServiceStub(ch)
    stub.CreateStream(pb.CreateStreamRequest(name="feed"), timeout=10)
    tail = stub.TailStream(pb.TailStreamRequest(stream="feed"), timeout=60)
    subs = stub.SubscribeChannels(pb.SubscribeChannelsRequest(channels=["alerts"]), timeout=60)
    assert next(subs).HasField("subscribed")
    ended = {}

    def drain(name, call):
        t0 = time.monotonic()
        try:
            for _ in call:
                pass
            ended[name] = ("OK", "", time.monotonic() - t0)
        except grpc.RpcError as e:
            ended[name] = (e.code().name, e.details(), time.monotonic() - t0)

    threads = [threading.Thread(target=drain, args=a) for a in (("tail", tail), ("subs", subs))]
    for t in threads:
        t.start()
    time.sleep(0.7)
    t0 = time.monotonic()
    server.send_signal()
    rc = server.wait(15)
    stopped = time.monotonic() - t0
    for t in threads:
        t.join(15)
    ch.close()
    server.check_clean(rc)
    assert stopped < 5, f"shutdown took {stopped:.1f}s with open streams"
    for name in ("tail", "subs"):
        code, details, took = ended[name]
        assert code == "UNAVAILABLE", f"{name}: {code} {details}"
        assert "shutting down" in details, details
