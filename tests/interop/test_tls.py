"""TLS with ALPN (h2 and http/1.1), and cleartext on the same port."""

import os
import signal
import ssl
import subprocess
import time

import pytest

from helpers import (H1Conn, BackgroundClient, connect, curl, h2load_check, nghttp_stats, run,
                     split_head_body, wait_closed)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(crt)],
        timeout=30, check_rc=0)
    return crt, key


@pytest.fixture
def tls_server(server_factory, cert):
    crt, key = cert
    return server_factory("--tls-cert", crt, "--tls-key", key)


def https(srv, path):
    return f"https://127.0.0.1:{srv.port}{path}"


def http(srv, path):
    return f"http://127.0.0.1:{srv.port}{path}"


def test_listening_line_says_tls(tls_server):
    assert "tls=1" in tls_server.listening_line, tls_server.listening_line


def test_curl_h2_alpn(tls_server):
    p = curl("-i", "--http2", "-k", "-w", "\n%{http_version}", https(tls_server, "/healthz"))
    assert p.out.rsplit("\n", 1)[-1] == "2", p.out
    blocks, body = split_head_body(p.stdout)
    assert blocks[0].startswith("HTTP/2 200"), blocks
    assert body == b"ok\n\n2", body


def test_curl_http11_over_tls(tls_server):
    p = curl("-i", "--http1.1", "-k", "-w", "\n%{http_version}", https(tls_server, "/healthz"))
    assert p.out.rsplit("\n", 1)[-1] == "1.1", p.out
    blocks, body = split_head_body(p.stdout)
    assert blocks[0].startswith("HTTP/1.1 200"), blocks
    assert body == b"ok\n\n1.1", body


def test_cleartext_same_port(tls_server):
    p = curl("-w", "\n%{http_version}", "--http1.1", http(tls_server, "/healthz"))
    assert p.out == "ok\n\n1.1", p.out
    p = curl("-w", "\n%{http_version}", "--http2-prior-knowledge", http(tls_server, "/healthz"))
    assert p.out == "ok\n\n2", p.out


def _tls_client(port, alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(connect(port), server_hostname="localhost")


def test_alpn_selection_raw(tls_server):
    with _tls_client(tls_server.port, ["h2", "http/1.1"]) as s:
        assert s.selected_alpn_protocol() == "h2"
    with _tls_client(tls_server.port, ["http/1.1"]) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        c = H1Conn(tls_server.port, sock=s)
        r = c.request("GET", "/healthz")
        assert r.status == 200 and r.body == b"ok\n"
    # no ALPN at all: HTTP/1.1
    with _tls_client(tls_server.port, None) as s:
        assert s.selected_alpn_protocol() is None
        c = H1Conn(tls_server.port, sock=s)
        r = c.request("GET", "/headers?tls=1")
        assert r.status == 200 and r.body.startswith(b"GET /headers tls=1\n"), r


def test_tls_echo_large_h2_and_h1(tls_server, tmp_path):
    data = os.urandom(700_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    for proto in ("--http2", "--http1.1"):
        out = tmp_path / "out.bin"
        p = curl(proto, "-k", "-o", str(out), "-w", "%{http_code}", "--data-binary", f"@{src}",
                 https(tls_server, "/echo"), timeout=60)
        assert p.out == "200", (proto, p.out)
        assert out.read_bytes() == data, proto


def test_tls_nghttp_and_h2load(tls_server):
    p = run(["nghttp", "-n", "-s", "-m", "50", https(tls_server, "/healthz")], timeout=60)
    assert p.returncode == 0, p.err
    rows = nghttp_stats(p.out)
    assert len(rows) == 50 and all(r[0] == 200 for r in rows), p.out[-2000:]
    p = run(["h2load", "-n", "1000", "-c", "2", "-m", "10", https(tls_server, "/healthz")],
            timeout=90)
    h2load_check(p.out, 1000)


def test_tls_trailers_h2(tls_server):
    p = curl("--http2", "-k", "-D", "-", "-o", "/dev/null", https(tls_server, "/trailers"))
    assert "x-checksum: abc123" in p.out.lower(), p.out


def test_bad_tls_handshakes(tls_server):
    """Garbage after a TLS record header, a truncated ClientHello and a client that leaves
    mid-handshake: each connection is dropped, other clients are fine."""
    bg = BackgroundClient(tls_server.port).start()
    try:
        # a TLS handshake record header followed by junk
        s = connect(tls_server.port)
        s.sendall(b"\x16\x03\x01\x00\x40" + b"\xff" * 64)
        closed, _, _ = wait_closed(s, 5)
        assert closed, "server kept a connection with a garbage TLS record open"
        s.close()
        # half a ClientHello, then close
        ctx = ssl.create_default_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        for _ in range(20):
            s = connect(tls_server.port)
            s.sendall(hello[: len(hello) // 2])
            s.close()
        # full ClientHello, then vanish without reading
        for _ in range(20):
            s = connect(tls_server.port)
            s.sendall(hello)
            s.close()
        time.sleep(0.3)
        with _tls_client(tls_server.port, ["h2"]) as s:
            assert s.selected_alpn_protocol() == "h2"
    finally:
        bg.stop_and_check()


def test_tls_handshake_then_idle(server_factory, cert):
    """A TLS client that completes nothing (sends no bytes) is closed by the idle timeout."""
    crt, key = cert
    srv = server_factory("--tls-cert", crt, "--tls-key", key, "--idle-timeout-ms", "1000",
                         "--header-timeout-ms", "1000")
    s = connect(srv.port)
    closed, _, elapsed = wait_closed(s, 6)
    s.close()
    assert closed and elapsed < 5, f"idle pre-handshake connection open after {elapsed:.1f}s"
    # nothing else broke
    with _tls_client(srv.port, ["http/1.1"]) as t:
        r = H1Conn(srv.port, sock=t).request("GET", "/healthz")
        assert r.status == 200


def test_tls_inflight_during_sigterm(tls_server):
    procs = [subprocess.Popen(["curl", "-sS", "-k", "--max-time", "15", proto, "-w",
                               "\n%{http_code} %{http_version}",
                               https(tls_server, "/delay?ms=1500")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for proto in ("--http2", "--http1.1")]
    try:
        time.sleep(0.5)
        tls_server.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=20) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert outs[0][0] == b"done\n\n200 2", outs[0]
    assert outs[1][0] == b"done\n\n200 1.1", outs[1]
    tls_server.check_clean(tls_server.wait(15))
