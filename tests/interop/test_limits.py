"""Connection limits, HTTP/2 settings and flow control, and the command line."""

import socket
import time

from helpers import (DATA, GOAWAY, SETTINGS, SETTINGS_INITIAL_WINDOW_SIZE,
                     SETTINGS_MAX_CONCURRENT_STREAMS, FLAG_ACK, HOST, BackgroundClient, H2Raw,
                     build_request, curl, get_metrics, h2_headers, h2_window_update,
                     h2load_check, hpack_request, http_get, metric_sum, run, vm_rss_kb,
                     RST_STREAM)
from conftest import binary


def test_max_connections(server_factory):
    srv = server_factory("--max-connections", "50")
    socks = []
    try:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect((HOST, srv.port))
            except (socket.timeout, OSError):
                s.close()  # backlog full: acceptable
                continue
            socks.append(s)
        assert len(socks) >= 50, f"only {len(socks)} connects succeeded"
        req = build_request("GET", "/healthz")
        for s in socks:
            try:
                s.sendall(req)
            except OSError:
                pass
        # the accepted connections are answered; the rest wait in the kernel backlog
        time.sleep(1.5)
        answered = 0
        for s in socks:
            s.settimeout(0.01)
            try:
                data = s.recv(4096)
            except (socket.timeout, OSError):
                continue
            if data.startswith(b"HTTP/1.1 200"):
                answered += 1
        assert srv.alive(), "server died with 200 connections open"
        assert 40 <= answered <= 50, f"{answered} connections served with --max-connections 50"
    finally:
        for s in socks:
            s.close()
    # once they are closed, accepting resumes and new requests succeed
    deadline = time.monotonic() + 10
    while True:
        try:
            r = http_get(srv.port, "/healthz", timeout=2)
            if r.status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not resume accepting"
        time.sleep(0.1)
    for _ in range(20):
        assert http_get(srv.port, "/healthz", timeout=3).status == 200
    m = get_metrics(srv.port)
    deadline = time.monotonic() + 5
    while metric_sum(m, "switchboard_connections_open") > 5:
        assert time.monotonic() < deadline, \
            f"connections_open stuck at {metric_sum(m, 'switchboard_connections_open')}"
        time.sleep(0.2)
        m = get_metrics(srv.port)


def server_settings(port):
    c = H2Raw(port)
    try:
        frames = c.read_frames(5, until=lambda fs: any(f.type == SETTINGS and not f.flags & FLAG_ACK
                                                      for f in fs))
        for f in frames:
            if f.type == SETTINGS and not f.flags & FLAG_ACK:
                return dict(f.settings())
        raise AssertionError(f"no SETTINGS from the server: {frames}")
    finally:
        c.close()


def test_h2_max_streams_setting(server_factory):
    srv = server_factory("--h2-max-streams", "5")
    st = server_settings(srv.port)
    assert st.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 5, st


def test_h2_max_streams_default(testserver):
    st = server_settings(testserver.port)
    assert st.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 128, st


def test_h2_max_streams_enforced(server_factory):
    """With --h2-max-streams 5, h2load -m 5 against a slow route gets every answer, and a
    raw client opening 6 at once gets the 6th refused. (h2load -m 20 would open streams before
    it read the server's SETTINGS and count the refused ones as errors: a client race.)"""
    srv = server_factory("--h2-max-streams", "5")
    p = run(["h2load", "-n", "40", "-c", "1", "-m", "5",
             f"http://127.0.0.1:{srv.port}/delay?ms=100"], timeout=60)
    h2load_check(p.out, 40)
    c = H2Raw(srv.port)
    try:
        c.read_frames(2, until=lambda fs: any(f.type == SETTINGS for f in fs))
        c.ack_settings()
        for i in range(6):
            c.send(h2_headers(2 * i + 1, hpack_request("GET", "/delay?ms=1000")))
        frames = c.read_frames(5, until=lambda fs: all(c.stream_ended(2 * i + 1) for i in range(5)))
        refused = [f for f in frames if f.type == RST_STREAM]
        goaway = [f for f in frames if f.type == GOAWAY]
        assert refused or goaway, "6th concurrent stream over SETTINGS_MAX_CONCURRENT_STREAMS=5 accepted"
        for f in refused:
            assert f.stream_id == 11, f"stream {f.stream_id} reset, want only the 6th (11)"
            code = int.from_bytes(f.payload[:4], "big")
            assert code in (1, 7), f"6th stream reset with code {code}, want REFUSED_STREAM"
        assert c.stream_data(11) == b"", "the 6th stream was served"
        for i in range(5):
            assert c.stream_data(2 * i + 1) == b"done\n" or goaway, f"stream {2 * i + 1}"
    finally:
        c.close()


def test_h2_flow_control(server_factory):
    srv = server_factory()
    bg = BackgroundClient(srv.port).start()
    rss0 = vm_rss_kb(srv.pid)
    c = H2Raw(srv.port, settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 1024)])
    try:
        c.read_frames(2, until=lambda fs: any(f.type == SETTINGS and not f.flags for f in fs))
        c.ack_settings()
        streams = [2 * i + 1 for i in range(10)]
        for sid in streams:
            c.send(h2_headers(sid, hpack_request("GET", "/stream?chunks=100&size=65536&interval_ms=0")))
        c.read_frames(3)  # never send WINDOW_UPDATE
        for sid in streams:
            n = sum(f.data_len() for f in c.frames if f.type == DATA and f.stream_id == sid)
            assert 1 <= n <= 1024, f"stream {sid}: {n} DATA bytes with a 1024-byte window"
        assert not c.goaways(), c.goaways()
        # 10 streams x 6.4 MB would be 64 MB if the server buffered what the handler produced
        rss1 = vm_rss_kb(srv.pid)
        assert rss1 - rss0 < 24 * 1024, f"server RSS grew {rss0} -> {rss1} KiB"
        # others are fine meanwhile, on HTTP/2 too
        p = curl("--http2-prior-knowledge", f"http://127.0.0.1:{srv.port}/healthz")
        assert p.out == "ok\n"
        # opening the window lets a stream finish byte-exact
        sid = streams[0]
        c.send(h2_window_update(0, 100 * 65536 * 2) + h2_window_update(sid, 100 * 65536))
        c.read_frames(20, until=lambda fs: c.stream_ended(sid))
        assert c.stream_data(sid) == b"x" * (100 * 65536), len(c.stream_data(sid))
    finally:
        c.close()
        bg.stop_and_check()


def _no_sanitizer(p):
    for out in (p.out, p.err):
        assert "AddressSanitizer" not in out and "LeakSanitizer" not in out and \
            "runtime error:" not in out, out


def test_cli_version_help_unknown(tmp_path):
    sb = binary("switchboard")
    p = run([sb, "--version"], timeout=20, cwd=tmp_path)
    _no_sanitizer(p)
    assert p.returncode == 0, p.err
    assert "switchboard 0.1.0" in p.out, p.out
    p = run([sb, "--help"], timeout=20, cwd=tmp_path)
    _no_sanitizer(p)
    assert p.returncode == 0, p.err
    assert "serve" in p.out and "--http" in p.out, p.out
    p = run([sb, "serve", "--no-such-flag", "1"], timeout=20, cwd=tmp_path)
    _no_sanitizer(p)
    assert p.returncode == 2, (p.returncode, p.out, p.err)
    assert "no-such-flag" in p.err, p.err
    p = run([sb, "--no-such-flag"], timeout=20, cwd=tmp_path)
    _no_sanitizer(p)
    assert p.returncode == 2, (p.returncode, p.err)
    p = run([sb, "serve", "--threads"], timeout=20, cwd=tmp_path)  # missing value
    _no_sanitizer(p)
    assert p.returncode == 2, (p.returncode, p.err)
    p = run([sb, "serve", "--threads", "lots"], timeout=20, cwd=tmp_path)
    _no_sanitizer(p)
    assert p.returncode == 2, (p.returncode, p.err)
    p = run([sb, "serve", "--tls-cert", "/nonexistent.pem"], timeout=20, cwd=tmp_path)  # key missing
    _no_sanitizer(p)
    assert p.returncode == 2, (p.returncode, p.err)


def test_cli_bad_tls_files_fail_cleanly(tmp_path):
    sb = binary("switchboard")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    p = run([sb, "serve", "--http", "127.0.0.1:0", "--threads", "1", "--tls-cert", str(bad),
             "--tls-key", str(bad)], timeout=10, cwd=tmp_path)
    assert p.returncode != 0, "started with an unusable certificate"
    _no_sanitizer(p)

