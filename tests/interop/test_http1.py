"""HTTP/1.1 (and 1.0) against a running server: curl, h2load --h1 and raw sockets."""

import os
import time

import pytest

from helpers import (H1Conn, build_request, chunked, curl, get_metrics, h2load_check,
                     http_get, metric_sum, run, split_head_body)


def url(srv, path):
    return f"http://127.0.0.1:{srv.port}{path}"


@pytest.mark.parametrize("kind", ["switchboard", "testserver"])
def test_healthz_curl(server_factory, kind):
    srv = server_factory(kind=kind)
    assert "threads=2" in srv.listening_line and "tls=0" in srv.listening_line, srv.listening_line
    p = curl("-i", "--http1.1", url(srv, "/healthz"))
    blocks, body = split_head_body(p.stdout)
    assert len(blocks) == 1, blocks
    head = blocks[0].lower()
    assert head.startswith("http/1.1 200"), head
    assert "\r\ncontent-type: text/plain" in head, head
    assert "\r\ncontent-length: 3" in head, head
    assert "\r\ndate: " in head, head
    assert body == b"ok\n"


def test_keepalive_two_requests(testserver):
    with H1Conn(testserver.port) as c:
        r1 = c.request("GET", "/healthz")
        assert r1.status == 200 and r1.body == b"ok\n"
        assert (r1.header("connection") or "").lower() != "close", r1
        r2 = c.request("GET", "/headers?second=1", headers=[("X-Seq", "2")])
        assert r2.status == 200, r2
        lines = r2.body.decode().splitlines()
        assert lines[0] == "GET /headers second=1", lines
        assert "x-seq: 2" in lines, lines


def test_pipelining_in_order(testserver):
    reqs = b"".join(build_request("GET", f"/headers?n={i}", [("X-N", str(i))]) for i in range(3))
    reqs += build_request("GET", "/nope")
    reqs += build_request("GET", "/healthz")
    with H1Conn(testserver.port) as c:
        c.send(reqs)  # one send
        for i in range(3):
            r = c.read_response()
            assert r.status == 200, r
            assert r.body.decode().splitlines()[0] == f"GET /headers n={i}", r.body
        r = c.read_response()
        assert r.status == 404 and r.body == b"not found\n", r
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok\n", r


def test_pipelining_many_small(testserver):
    n = 50
    with H1Conn(testserver.port) as c:
        c.send(b"".join(build_request("GET", f"/headers?i={i}") for i in range(n)))
        for i in range(n):
            r = c.read_response()
            assert r.status == 200 and r.body.startswith(f"GET /headers i={i}\n".encode()), (i, r)


def test_chunked_request_echo(testserver):
    parts = [b"hello", b" ", b"chunked", b" world" * 100]
    with H1Conn(testserver.port) as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]) + chunked(parts))
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("content-type") == "application/octet-stream", r
        assert r.body == b"".join(parts)
        # the connection stays usable
        r = c.request("GET", "/healthz")
        assert r.status == 200 and r.body == b"ok\n"


def test_chunked_request_in_pieces(testserver):
    """Chunk framing split across many small writes (sizes, CRLFs, data all cut)."""
    body = chunked([b"a" * 17, b"b" * 300, b"c"])
    with H1Conn(testserver.port) as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]))
        for i in range(0, len(body), 7):
            c.send(body[i:i + 7])
            time.sleep(0.002)
        r = c.read_response()
        assert r.status == 200 and r.body == b"a" * 17 + b"b" * 300 + b"c", r


def test_echo_content_length_curl(testserver, tmp_path):
    data = os.urandom(300_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http1.1", "-o", str(out), "-w", "%{http_code} %{http_version}",
             "--data-binary", f"@{src}", "-H", "Content-Type: application/octet-stream",
             url(testserver, "/echo"))
    assert p.out == "200 1.1", p.out
    assert out.read_bytes() == data


def test_echo_chunked_curl(testserver, tmp_path):
    data = os.urandom(100_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http1.1", "-v", "-o", str(out), "-H", "Transfer-Encoding: chunked",
             "--data-binary", f"@{src}", url(testserver, "/echo"))
    assert "transfer-encoding: chunked" in p.err.lower(), p.err
    assert out.read_bytes() == data


def test_chunked_response_stream(testserver):
    with H1Conn(testserver.port) as c:
        r = c.request("GET", "/stream?chunks=5&size=10&interval_ms=10")
        assert r.status == 200, r
        assert r.chunked, f"expected a chunked response: {r.headers}"
        assert r.body == b"x" * 50
        r = c.request("GET", "/stream?chunks=20&size=10000&interval_ms=0")
        assert r.status == 200 and r.body == b"x" * 200_000, (r.status, len(r.body))


def test_sse(testserver):
    with H1Conn(testserver.port) as c:
        r = c.request("GET", "/sse?events=3&interval_ms=10")
        assert r.status == 200, r
        assert (r.header("content-type") or "").startswith("text/event-stream"), r
        assert r.body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n", r.body


def test_expect_100_continue_curl(testserver, tmp_path):
    data = os.urandom(5000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http1.1", "-v", "-H", "Expect: 100-continue", "--expect100-timeout", "20",
             "-o", str(out), "--data-binary", f"@{src}", url(testserver, "/echo"))
    assert "HTTP/1.1 100 Continue" in p.err, p.err
    assert out.read_bytes() == data


def test_expect_100_continue_raw(testserver):
    body = b"0123456789" * 10
    with H1Conn(testserver.port, timeout=3) as c:
        c.send(build_request("POST", "/echo", [("Expect", "100-continue"),
                                              ("Content-Length", str(len(body)))]))
        # the server must invite the body before we send it
        interim = c.read_response(skip_1xx=False)
        assert interim.status == 100, interim
        assert interim.version == "HTTP/1.1"
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and r.body == body, r


def test_expect_other_417(testserver):
    with H1Conn(testserver.port, timeout=3) as c:
        c.send(build_request("POST", "/echo", [("Expect", "something-else"),
                                              ("Content-Length", "3")]) + b"abc")
        r = c.read_response()
        assert r.status == 417, r


def test_connection_close(testserver):
    with H1Conn(testserver.port) as c:
        r = c.request("GET", "/healthz", headers=[("Connection", "close")])
        assert r.status == 200 and r.body == b"ok\n"
        assert (r.header("connection") or "").lower() == "close", r.headers
        closed, extra, _ = c.wait_closed(3)
        assert closed, "server kept the connection open after Connection: close"
        assert extra == b"", extra


def test_head_healthz(testserver):
    with H1Conn(testserver.port) as c:
        r = c.request("HEAD", "/healthz")
        assert r.status == 200, r
        assert r.header("content-length") == "3", r.headers
        assert r.header("content-type", "").startswith("text/plain"), r.headers
        # no body bytes on the wire: the next response starts right away
        r2 = c.request("GET", "/healthz")
        assert r2.status == 200 and r2.body == b"ok\n", r2


def test_http10_closes(testserver):
    with H1Conn(testserver.port) as c:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok\n", r
        assert r.version in ("HTTP/1.0", "HTTP/1.1"), r.version
        closed, extra, _ = c.wait_closed(3)
        assert closed, "HTTP/1.0 request without keep-alive: server did not close"
        assert extra == b""


def test_http10_stream_close_delimited_or_length(testserver):
    """HTTP/1.0 cannot take chunked: a streamed body must be close-delimited (or sized)."""
    with H1Conn(testserver.port) as c:
        c.send(b"GET /stream?chunks=3&size=5&interval_ms=0 HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert not r.chunked, "chunked response to an HTTP/1.0 request"
        assert r.body == b"x" * 15, r.body


def test_trailers_http1(testserver):
    with H1Conn(testserver.port) as c:
        r = c.request("GET", "/trailers", headers=[("TE", "trailers")])
        assert r.status == 200, r
        assert r.chunked, r.headers
        assert r.body == b"hello\n"
        assert r.trailer("x-checksum") == "abc123", r.trailers
        assert r.trailer("x-status") == "0", r.trailers
        # still usable
        r = c.request("GET", "/healthz")
        assert r.status == 200


def test_not_found(testserver):
    r = http_get(testserver.port, "/no/such/route")
    assert r.status == 404 and r.body == b"not found\n", r
    p = curl("-o", "/dev/null", "-w", "%{http_code}", url(testserver, "/nope?x=1"))
    assert p.out == "404"


def test_headers_route_order_and_case(testserver):
    with H1Conn(testserver.port) as c:
        r = c.request("PUT", "/headers", headers=[("X-First", "1"), ("X-Mixed-Case", "Va lue"),
                                                  ("X-Last", "3")], body=b"")
        assert r.status == 200, r
        lines = r.body.decode().splitlines()
        assert lines[0] == "PUT /headers -", lines
        names = [ln.split(":", 1)[0] for ln in lines[1:]]
        assert names.index("x-first") < names.index("x-mixed-case") < names.index("x-last"), names
        assert "x-mixed-case: Va lue" in lines, lines


def test_metrics(server_factory):
    srv = server_factory(kind="switchboard")
    m0 = get_metrics(srv.port)
    for name in ("switchboard_connections_open", "switchboard_connections_total",
                 "switchboard_http_bytes_received_total", "switchboard_http_bytes_sent_total",
                 "switchboard_http_request_duration_seconds_sum",
                 "switchboard_http_request_duration_seconds_count"):
        assert metric_sum(m0, name) is not None, f"{name} missing from /metrics"
    assert any(n == "switchboard_http_request_duration_seconds_bucket" and 'le="+Inf"' in lab
               for n, lab in m0), "histogram buckets (with le=\"+Inf\") missing"

    r = http_get(srv.port, "/metrics")
    assert r.header("content-type") == "text/plain; version=0.0.4", r.headers

    with H1Conn(srv.port) as c:
        for _ in range(5):
            assert c.request("GET", "/healthz").status == 200
    http_get(srv.port, "/nope")

    def h1(m, code):
        return metric_sum(m, "switchboard_http_requests_total", protocol="http1", code=code) or 0

    # counters are recorded when a response completes; allow a moment
    deadline = time.monotonic() + 2
    while True:
        m1 = get_metrics(srv.port)
        if h1(m1, "200") >= h1(m0, "200") + 5 + 1 and h1(m1, "404") >= h1(m0, "404") + 1:
            break
        assert time.monotonic() < deadline, \
            f"http1 counters did not grow: before 200={h1(m0, '200')} 404={h1(m0, '404')}, " \
            f"after 200={h1(m1, '200')} 404={h1(m1, '404')}"
        time.sleep(0.1)
    total0 = metric_sum(m0, "switchboard_connections_total")
    total1 = metric_sum(m1, "switchboard_connections_total")
    assert total1 >= total0 + 3, (total0, total1)
    assert metric_sum(m1, "switchboard_http_bytes_received_total") > \
        metric_sum(m0, "switchboard_http_bytes_received_total")
    assert metric_sum(m1, "switchboard_http_bytes_sent_total") > \
        metric_sum(m0, "switchboard_http_bytes_sent_total")
    assert metric_sum(m1, "switchboard_http_request_duration_seconds_count") >= \
        metric_sum(m0, "switchboard_http_request_duration_seconds_count") + 6
    assert metric_sum(m1, "switchboard_connections_open") >= 1  # the /metrics request itself


def test_h1_load_h2load(testserver):
    p = run(["h2load", "--h1", "-n", "1000", "-c", "4", "-m", "4",
             f"http://127.0.0.1:{testserver.port}/healthz"], timeout=60)
    h2load_check(p.out, 1000)


def test_many_sequential_connections(testserver):
    for i in range(100):
        r = http_get(testserver.port, f"/headers?i={i}")
        assert r.status == 200 and r.body.startswith(f"GET /headers i={i}\n".encode())


def test_body_on_get_is_skipped(testserver):
    """A body on a route that ignores it is consumed, never parsed as the next request."""
    fake = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    with H1Conn(testserver.port) as c:
        c.send(build_request("GET", "/healthz", body=fake) + build_request("GET", "/headers?after=1"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok\n", r
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"GET /headers after=1\n"), r
        # chunked body on a route that ignores it
        c.send(build_request("POST", "/healthz", [("Transfer-Encoding", "chunked")]) +
               chunked([fake]) + build_request("GET", "/headers?after=2"))
        r = c.read_response()
        assert r.status in (200, 405), r
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"GET /headers after=2\n"), r


def test_connection_close_stops_pipeline(testserver):
    """Requests pipelined after one with Connection: close are not answered."""
    with H1Conn(testserver.port) as c:
        c.send(build_request("GET", "/headers?n=1", [("Connection", "close")]) +
               build_request("GET", "/headers?n=2"))
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"GET /headers n=1\n"), r
        closed, extra, _ = c.wait_closed(3)
        assert closed and extra == b"", f"answered past Connection: close: {extra[:200]!r}"


def test_head_streaming_route(testserver):
    """HEAD on a streamed (chunked) route: headers only, no chunk framing on the wire."""
    with H1Conn(testserver.port) as c:
        r = c.request("HEAD", "/stream?chunks=3&size=10&interval_ms=0")
        assert r.status == 200, r
        r2 = c.request("GET", "/healthz")
        assert r2.status == 200 and r2.body == b"ok\n", r2


def test_echo_4mb_http1(testserver, tmp_path):
    data = os.urandom(4 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http1.1", "-o", str(out), "-w", "%{http_code}", "--data-binary", f"@{src}",
             url(testserver, "/echo"), timeout=60)
    assert p.out == "200", p.out
    assert out.read_bytes() == data


def test_long_keepalive_mixed_sequence(testserver):
    """One connection, many requests of every kind, in sequence."""
    with H1Conn(testserver.port) as c:
        for i in range(20):
            assert c.request("GET", "/healthz").body == b"ok\n"
            assert c.request("POST", "/echo", body=b"x" * i).body == b"x" * i
            assert c.request("GET", f"/stream?chunks={i}&size=3").body == b"x" * (3 * i)
            assert c.request("HEAD", "/healthz").body == b""
            assert c.request("GET", "/trailers").trailer("x-checksum") == "abc123"
