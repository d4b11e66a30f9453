"""Stopping `switchboard serve` while clients long-poll: SIGTERM ends every long poll at once,
so each held request answers (200, no messages) and the server exits well within its grace
period, instead of holding the shutdown until the poll's own deadline."""
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
