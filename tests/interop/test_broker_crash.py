"""kill -9 through the broker's API: producers send over REST and consumers receive and delete
over gRPC while the server is killed at random moments and restarted on the same data
directory. After the last restart every acknowledged send is stored (unless a delete of it was
attempted) and no acknowledged delete has come back. A few cycles, a few seconds each: the
engine's own crash test (tests/broker) covers the long run."""

import http.client
import json
import os
import random
import signal
import threading
import time

import grpc

import grpc_stubs

pb, pbg = grpc_stubs.generate(os.path.join(grpc_stubs.PROTO_DIR, "switchboard", "broker", "v1"),
                              ["broker.proto"], ["broker_pb2", "broker_pb2_grpc"])

CYCLES = 4
QUEUE = "crash"


def rest(port, method, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=json.dumps(body),
                     headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def producer(port, stop, prefix, acked):
    n = 0
    while not stop.is_set():
        body = f"{prefix}-{n}"
        n += 1
        try:
            st, js = rest(port, "POST", f"/v1/queues/{QUEUE}/messages",
                          {"messages": [{"text": body}]})
        except Exception:  # noqa: BLE001  (the server is gone)
            return
        if st == 200 and js["results"][0].get("code", 0) == 0:
            acked.add(body)


def consumer(port, stop, tried, deleted):
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pbg.BrokerServiceStub(ch)
    try:
        while not stop.is_set():
            msgs = stub.ReceiveMessages(pb.ReceiveMessagesRequest(queue=QUEUE, max_messages=10),
                                        timeout=5).messages
            if not msgs:
                continue
            # A delete may take effect although its answer is lost in the kill: such a
            # message may legitimately be gone, so it counts as tried.
            tried.update(m.text for m in msgs)
            res = stub.DeleteMessages(pb.DeleteMessagesRequest(
                queue=QUEUE, receipt_handles=[m.receipt_handle for m in msgs]), timeout=5)
            for m, r in zip(msgs, res.results):
                if r.code == 0:
                    deleted.add(m.text)
    except grpc.RpcError:
        return
    finally:
        ch.close()


def stored(port):
    """Every message stored in the queue (peek does not lease)."""
    out, seq = [], 0
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", f"/v1/queues/{QUEUE}/messages:peek?fromSequence={seq}&maxMessages=100")
        js = json.loads(conn.getresponse().read())
        conn.close()
        msgs = js.get("messages", [])
        if not msgs:
            return out
        out += [m["text"] for m in msgs]
        seq = int(js["nextSequence"])


def test_kill9_keeps_acknowledged_work(server_factory):
    rnd = random.Random(os.environ.get("SB_CRASH_SEED", "broker-api"))
    acked, tried, deleted = set(), set(), set()
    server = server_factory(kind="switchboard")
    st, js = rest(server.port, "POST", "/v1/queues", {"name": QUEUE})
    assert st == 200, js
    for cycle in range(CYCLES):
        stop = threading.Event()
        threads = [threading.Thread(target=producer, args=(server.port, stop, f"c{cycle}p{i}",
                                                           acked)) for i in range(2)]
        threads.append(threading.Thread(target=consumer, args=(server.port, stop, tried, deleted)))
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.3, 1.2))
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        server.checked = True  # killed on purpose: no clean-exit check
        stop.set()
        for t in threads:
            t.join(15)
            assert not t.is_alive()
        server = server_factory(kind="switchboard")
    assert acked and deleted, "the load never got going"
    now = set(stored(server.port))
    lost = acked - tried - now
    assert not lost, f"{len(lost)} acknowledged sends lost, e.g. {sorted(lost)[:5]}"
    back = deleted & now
    assert not back, f"{len(back)} acknowledged deletes came back, e.g. {sorted(back)[:5]}"
