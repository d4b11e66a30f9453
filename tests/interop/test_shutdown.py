"""Graceful shutdown: SIGTERM/SIGINT let in-flight requests finish, refuse new connections,
close idle ones, send GOAWAY to HTTP/2, and exit 0."""

import signal
import socket
import subprocess
import threading
import time

from helpers import (GOAWAY, H1Conn, H2Raw, HOST, h2_headers, hpack_request, wait_closed)


def refused_within(port, limit):
    """Retries connect() until it is refused; returns the seconds it took, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.2)
        try:
            s.connect((HOST, port))
        except ConnectionRefusedError:
            return time.monotonic() - t0
        except (socket.timeout, OSError):
            pass
        finally:
            s.close()
        time.sleep(0.02)
    return None


def test_sigterm_drains_inflight(testserver):
    srv = testserver
    results = [None] * 5

    def worker(i):
        try:
            with H1Conn(srv.port, timeout=10) as c:
                t0 = time.monotonic()
                r = c.request("GET", "/delay?ms=1500")
                results[i] = (r.status, r.body, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    t_sig = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    took = refused_within(srv.port, 1.0)
    assert took is not None, "new connections still accepted 1s after SIGTERM"
    for t in threads:
        t.join(15)
    assert all(r is not None for r in results), results
    for r in results:
        assert not isinstance(r, Exception), f"in-flight request failed: {r!r} (all: {results})"
        status, body, elapsed = r
        assert status == 200 and body == b"done\n", r
        assert elapsed >= 1.3, f"/delay?ms=1500 answered after {elapsed:.2f}s"
    rc = srv.wait(15)
    assert rc is not None, "server did not exit after the in-flight requests finished"
    assert time.monotonic() - t_sig < 8, "exit took far longer than the in-flight work"
    log = srv.log_text()
    assert "event=stopping" in log and "event=stopped" in log, srv.tail()
    srv.check_clean(rc)


def test_sigint_idle_connections_closed_promptly(testserver):
    srv = testserver
    conns = []
    for _ in range(3):
        c = H1Conn(srv.port)
        assert c.request("GET", "/healthz").status == 200
        conns.append(c)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGINT)
    for c in conns:
        closed, data, _ = c.wait_closed(3)
        assert closed and data == b"", "idle keep-alive connection not closed on stop"
        c.close()
    rc = srv.wait(15)
    # no in-flight work: no reason to wait for the grace period (10 s)
    assert time.monotonic() - t0 < 5, "stop with only idle connections took > 5s"
    srv.check_clean(rc)


def test_h2_goaway_and_inflight_completes_raw(testserver):
    srv = testserver
    c = H2Raw(srv.port, timeout=10)
    try:
        c.send(h2_headers(1, hpack_request("GET", "/delay?ms=1500")))
        time.sleep(0.3)
        srv.send_signal(signal.SIGTERM)
        frames = c.read_frames(10, until=lambda fs: c.stream_ended(1))
        goaways = [f for f in frames if f.type == GOAWAY]
        assert goaways, f"no GOAWAY after SIGTERM: {frames}"
        last, code, _ = goaways[-1].goaway()
        assert code == 0, f"graceful GOAWAY should be NO_ERROR, got {code}"
        assert last >= 1, f"GOAWAY last-stream-id {last} drops the in-flight stream 1"
        assert c.stream_data(1) == b"done\n", frames
        assert c.stream_ended(1)
        # a new stream after GOAWAY is not served (refused or ignored), and the connection ends
        try:
            c.send(h2_headers(3, hpack_request("GET", "/healthz")))
        except OSError:
            pass
        c.read_frames(10)
        assert c.closed, "connection open after GOAWAY and the last stream finished"
        assert not c.stream_ended(3) or c.stream_data(3) == b"", "stream opened after GOAWAY served"
    finally:
        c.close()
    rc = srv.wait(15)
    srv.check_clean(rc)


def test_h2_curl_inflight_during_sigterm(testserver):
    srv = testserver
    p = subprocess.Popen(["curl", "-sS", "--max-time", "15", "--http2-prior-knowledge",
                          "-w", "\n%{http_code} %{http_version}",
                          f"http://127.0.0.1:{srv.port}/delay?ms=1500"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        srv.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert out == b"done\n\n200 2", out
    rc = srv.wait(15)
    srv.check_clean(rc)


def test_grace_period_expires(server_factory):
    srv = server_factory("--shutdown-grace-ms", "500")
    c = H1Conn(srv.port, timeout=10)
    c.send(b"GET /delay?ms=8000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    closed, data, _ = c.wait_closed(6)
    c.close()
    assert closed, "in-flight connection still open after the grace period"
    assert b"done" not in data
    rc = srv.wait(10)
    assert rc is not None and time.monotonic() - t0 < 4, "grace period not enforced"
    srv.check_clean(rc)


def test_stop_with_streaming_and_h2_clients(server_factory):
    """Stop while streams are mid-response on both protocols and a client is not reading:
    the grace period ends them and everything is freed (LeakSanitizer)."""
    srv = server_factory("--shutdown-grace-ms", "1000")
    h1 = H1Conn(srv.port)
    h1.send(b"GET /stream?chunks=100000&size=1000&interval_ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    stuck = socket.create_connection((HOST, srv.port), timeout=5)
    stuck.sendall(b"GET /stream?chunks=1000&size=65536&interval_ms=0 HTTP/1.1\r\nHost: x\r\n\r\n")
    h2 = H2Raw(srv.port)
    h2.send(h2_headers(1, hpack_request("GET", "/stream?chunks=100000&size=100&interval_ms=1")))
    h2.send(h2_headers(3, hpack_request("GET", "/sse?events=100000&interval_ms=5")))
    h2.read_frames(1)
    time.sleep(0.3)
    srv.send_signal(signal.SIGTERM)
    rc = srv.wait(10)
    for s in (h1.sock, stuck, h2.sock):
        wait_closed(s, 1)
        s.close()
    srv.check_clean(rc)
