"""HTTP/2 cleartext (prior knowledge and Upgrade) with curl, nghttp, h2load and raw frames."""

import os
import re
import time

from helpers import (CONTINUATION, DATA, FLAG_END_HEADERS, FLAG_END_STREAM, GOAWAY, HEADERS,
                     RST_STREAM, SETTINGS, H2Raw, h2_frame,
                     curl, first_header_block_status, get_metrics, h2_headers, h2_rst, h2load_check,
                     hpack_request, metric_sum, nghttp_stats, run, split_head_body)


def url(srv, path):
    return f"http://127.0.0.1:{srv.port}{path}"


def test_prior_knowledge_healthz(sbserver):
    p = curl("-i", "--http2-prior-knowledge", url(sbserver, "/healthz"))
    blocks, body = split_head_body(p.stdout)
    assert len(blocks) == 1 and blocks[0].startswith("HTTP/2 200"), blocks
    head = blocks[0].lower()
    assert "\r\ncontent-type: text/plain" in head, head
    assert body == b"ok\n"


def test_prior_knowledge_404(testserver):
    p = curl("-i", "--http2-prior-knowledge", url(testserver, "/nope"))
    blocks, body = split_head_body(p.stdout)
    assert blocks[0].startswith("HTTP/2 404"), blocks
    assert body == b"not found\n"


def test_upgrade_h2c(testserver):
    p = curl("-i", "--http2", "-w", "\n%{http_version}", url(testserver, "/healthz"))
    assert p.out.rsplit("\n", 1)[-1] == "2", p.out
    blocks, body = split_head_body(p.stdout)
    assert blocks[0].startswith("HTTP/1.1 101"), blocks
    assert "upgrade: h2c" in blocks[0].lower(), blocks
    assert blocks[-1].startswith("HTTP/2 200"), blocks
    assert body == b"ok\n\n2", body


def test_upgrade_h2c_then_more_streams(testserver):
    """After an h2c upgrade the connection carries further HTTP/2 requests (curl reuses it)."""
    p = curl("--http2", "-w", "%{http_version} %{http_code} %{num_connects}\n",
             url(testserver, "/headers?a=1"), url(testserver, "/healthz"),
             url(testserver, "/headers?b=2"))
    assert "GET /headers a=1" in p.out and "GET /headers b=2" in p.out, p.out
    stats = re.findall(r"^(\S+) (\d+) (\d+)$", p.out, re.M)
    assert [s[:2] for s in stats] == [("2", "200")] * 3, p.out
    assert sum(int(s[2]) for s in stats) == 1, f"expected one connection: {p.out}"


def test_nghttp_100_concurrent_streams(testserver):
    t0 = time.monotonic()
    p = run(["nghttp", "-n", "-s", "-m", "100", url(testserver, "/delay?ms=500")], timeout=60)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.err + p.out[-2000:]
    rows = nghttp_stats(p.out)
    assert len(rows) == 100, p.out[-3000:]
    assert all(code == 200 and size == 5 for code, size, _ in rows), rows
    # 100 streams of 500 ms each on one connection: concurrent, not one after the other
    assert elapsed < 8, f"100 concurrent /delay?ms=500 streams took {elapsed:.1f}s"


def test_nghttp_100_streams_healthz(sbserver):
    p = run(["nghttp", "-n", "-s", "-m", "100", url(sbserver, "/healthz")], timeout=60)
    assert p.returncode == 0, p.err
    rows = nghttp_stats(p.out)
    assert len(rows) == 100 and all(r[0] == 200 and r[1] == 3 for r in rows), p.out[-3000:]


def test_h2load(testserver):
    p = run(["h2load", "-n", "2000", "-c", "4", "-m", "10", url(testserver, "/healthz")],
            timeout=90)
    h2load_check(p.out, 2000)


def test_trailers_h2_nghttp(testserver):
    p = run(["nghttp", "-v", url(testserver, "/trailers")], timeout=20)
    assert p.returncode == 0, p.err
    out = p.out
    assert re.search(r"\(stream_id=\d+\) :status: 200", out), out
    i_data = out.find("recv DATA frame")
    i_trailer = out.find("x-checksum: abc123")
    assert i_data >= 0 and i_trailer > i_data, f"trailers must follow the DATA:\n{out}"
    assert re.search(r"\(stream_id=\d+\) x-status: 0", out), out
    # the trailing HEADERS frame carries END_STREAM
    heads = [m.start() for m in re.finditer(r"recv HEADERS frame", out)]
    assert len(heads) == 2, out
    assert "END_STREAM" in out[heads[1]:heads[1] + 200], out


def test_trailers_h2_curl(testserver):
    p = curl("--http2-prior-knowledge", "-D", "-", "-o", "/dev/null", url(testserver, "/trailers"))
    # curl reports trailers with the headers
    assert re.search(r"^x-checksum: abc123\r?$", p.out, re.M | re.I), p.out
    assert re.search(r"^x-status: 0\r?$", p.out, re.M | re.I), p.out


def test_echo_1mb_h2(testserver, tmp_path):
    data = os.urandom(1 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http2-prior-knowledge", "-o", str(out), "-w", "%{http_code} %{http_version}",
             "--data-binary", f"@{src}", url(testserver, "/echo"), timeout=60)
    assert p.out == "200 2", p.out
    got = out.read_bytes()
    assert len(got) == len(data) and got == data, f"echo mismatch: {len(got)} bytes back"


def test_echo_1mb_h2_upgrade_then_post(testserver, tmp_path):
    """1 MB POST over a connection that was upgraded by an earlier GET."""
    data = os.urandom(1 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http2", "-w", "%{http_version}\n", url(testserver, "/healthz"), "--next",
             "--http2", "-o", str(out), "-w", "%{http_version}\n", "--data-binary", f"@{src}",
             url(testserver, "/echo"), timeout=60)
    assert p.out.endswith("2\n2\n"), p.out
    assert out.read_bytes() == data


def test_stream_large_h2(testserver, tmp_path):
    out = tmp_path / "out.bin"
    p = curl("--http2-prior-knowledge", "-o", str(out), "-w", "%{http_code}",
             url(testserver, "/stream?chunks=64&size=65536&interval_ms=0"), timeout=60)
    assert p.out == "200"
    assert out.read_bytes() == b"x" * (64 * 65536)


def test_headers_route_h2(testserver):
    p = curl("--http2-prior-knowledge", "-H", "X-Test: 42", url(testserver, "/headers?q=1"))
    lines = p.out.splitlines()
    assert lines[0] == "GET /headers q=1", lines
    assert "x-test: 42" in lines, lines
    assert not any(ln.startswith(":") for ln in lines), "pseudo-headers listed as headers"


def test_raw_h2_get(testserver):
    c = H2Raw(testserver.port)
    try:
        c.send(h2_headers(1, hpack_request("GET", "/healthz")))
        frames = c.read_frames(5, until=lambda fs: c.stream_ended(1))
        assert any(f.type == SETTINGS and not f.flags for f in frames), "no server SETTINGS"
        assert first_header_block_status(frames, 1) == 200, frames
        assert c.stream_data(1) == b"ok\n"
        assert not any(f.type in (GOAWAY, RST_STREAM) for f in frames), frames
    finally:
        c.close()


def test_metrics_http2_counted(testserver):
    def h2count():
        return metric_sum(get_metrics(testserver.port), "switchboard_http_requests_total",
                          protocol="http2", code="200") or 0
    before = h2count()
    p = run(["nghttp", "-n", "-s", "-m", "10", url(testserver, "/healthz")], timeout=30)
    assert p.returncode == 0
    deadline = time.monotonic() + 2
    while h2count() < before + 10:
        assert time.monotonic() < deadline, f"http2 200 counter: {before} -> {h2count()}"
        time.sleep(0.1)


def test_client_reset_mid_stream(testserver):
    """A client resets a streaming response; the connection and server keep working."""
    c = H2Raw(testserver.port)
    try:
        c.send(h2_headers(1, hpack_request("GET", "/stream?chunks=1000&size=1000&interval_ms=1")))
        c.read_frames(3, until=lambda fs: any(f.type == DATA and f.stream_id == 1 for f in fs))
        c.send(h2_rst(1, 8))
        c.send(h2_headers(3, hpack_request("GET", "/healthz")))
        frames = c.read_frames(5, until=lambda fs: c.stream_ended(3))
        assert c.stream_data(3) == b"ok\n", frames[-10:]
        assert not c.goaways(), c.goaways()
        assert not any(f.type == DATA and f.stream_id == 1 and f.flags & FLAG_END_STREAM
                       for f in frames)
        assert all(f.type != HEADERS or f.stream_id in (1, 3) for f in frames)
    finally:
        c.close()


def test_head_h2(testserver):
    p = curl("-I", "--http2-prior-knowledge", url(testserver, "/healthz"))
    assert p.out.startswith("HTTP/2 200"), p.out
    assert re.search(r"^content-length: 3\r?$", p.out, re.M | re.I), p.out


def test_upgrade_with_body(testserver, tmp_path):
    """curl --http2 on a POST: the body must arrive intact whether or not the server upgrades."""
    data = os.urandom(200_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    p = curl("--http2", "-o", str(out), "-w", "%{http_code} %{http_version}",
             "--data-binary", f"@{src}", url(testserver, "/echo"), timeout=60)
    assert p.out in ("200 2", "200 1.1"), p.out
    assert out.read_bytes() == data


def test_body_over_limit_h2(server_factory, tmp_path):
    srv = server_factory("--max-body-bytes", "1024")
    src = tmp_path / "in.bin"
    src.write_bytes(b"y" * 4096)
    p = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
             "--data-binary", f"@{src}", url(srv, "/echo"), check_rc=None)
    # 413, or the stream reset; never a 200 echo of the whole body
    assert (p.returncode == 0 and p.out == "413") or p.returncode != 0, (p.returncode, p.out)
    p = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
             "--data-binary", "small", url(srv, "/echo"))
    assert p.out == "200"


def test_h2load_many_connections(testserver):
    p = run(["h2load", "-n", "1000", "-c", "50", "-m", "2", url(testserver, "/healthz")],
            timeout=90)
    h2load_check(p.out, 1000)


def test_raw_h2_continuation_frames(testserver):
    """A header block split over HEADERS + CONTINUATION frames is reassembled."""
    block = hpack_request("GET", "/headers?split=1", headers=[("x-part", "v" * 300)])
    c = H2Raw(testserver.port)
    try:
        c.send(h2_frame(HEADERS, FLAG_END_STREAM, 1, block[:10]) +
               h2_frame(CONTINUATION, 0, 1, block[10:100]) +
               h2_frame(CONTINUATION, FLAG_END_HEADERS, 1, block[100:]))
        c.read_frames(5, until=lambda fs: c.stream_ended(1))
        body = c.stream_data(1).decode()
        assert body.startswith("GET /headers split=1\n"), body
        assert "x-part: " + "v" * 300 in body, body
    finally:
        c.close()
