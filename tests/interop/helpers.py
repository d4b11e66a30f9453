"""Client-side helpers for the HTTP interop tests: a raw HTTP/1.1 client, a raw HTTP/2
frame client (with a minimal HPACK encoder), subprocess runners for curl/nghttp/h2load, and a
background "well-behaved client" used to prove that bad input on one connection does not hurt
the others.

Standard library only. Every socket has a timeout and every loop is bounded, so a hung server
fails a test instead of hanging it.
"""

import errno
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0


# --------------------------------------------------------------------------------------------
# sockets


def connect(port, timeout=DEFAULT_TIMEOUT):
    """A TCP connection to the server on loopback, with a timeout on every operation."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_closed(sock, timeout):
    """Reads (and discards) until the peer closes. Returns (closed, data, elapsed): closed is
    True on EOF or a reset, False when timeout passed with the connection still open."""
    start = time.monotonic()
    deadline = start + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(data), time.monotonic() - start
        sock.settimeout(min(left, 0.5))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            return True, bytes(data), time.monotonic() - start
        if not chunk:
            return True, bytes(data), time.monotonic() - start
        if len(data) < (1 << 20):
            data += chunk


def vm_rss_kb(pid):
    """Resident set size of a process in KiB (from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --------------------------------------------------------------------------------------------
# HTTP/1.1 raw client


class ConnectionClosed(Exception):
    """The peer closed the connection before a complete response arrived."""


class Response:
    def __init__(self, version, status, reason, headers, body=b"", trailers=None, chunked=False):
        self.version = version  # "HTTP/1.1"
        self.status = status  # int
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body
        self.trailers = trailers or []
        self.chunked = chunked

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def trailer(self, name, default=None):
        name = name.lower()
        for k, v in self.trailers:
            if k == name:
                return v
        return default

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body[:80]!r}>"


class H1Conn:
    """A raw HTTP/1.1 connection: send bytes, parse responses (content-length, chunked with
    trailers, or close-delimited bodies; 1xx interim responses)."""

    def __init__(self, port, timeout=DEFAULT_TIMEOUT, sock=None):
        self.sock = sock if sock is not None else connect(port, timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise ConnectionClosed("connection closed by peer")
        self.sock.settimeout(self.timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as e:
            self.eof = True
            raise ConnectionClosed("connection reset by peer") from e
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by peer")
        self.buf += chunk

    def _line(self, limit=65536):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > limit:
                raise AssertionError("line too long in response")
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _headers(self):
        headers = []
        while True:
            line = self._line()
            if line == b"":
                return headers
            name, sep, value = line.partition(b":")
            assert sep, f"bad header line in response: {line!r}"
            headers.append((name.decode("latin-1").strip().lower(), value.decode("latin-1").strip()))

    def read_head(self):
        """Reads one status line + headers (any status, including 1xx)."""
        line = self._line()
        parts = line.decode("latin-1").split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/"), f"bad status line {line!r}"
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        return version, status, reason, self._headers()

    def read_response(self, head=False, skip_1xx=True, max_body=256 << 20):
        """Reads one complete response. head=True: a response to HEAD (no body). 1xx interim
        responses are skipped unless skip_1xx is False (then one is returned as is)."""
        while True:
            version, status, reason, headers = self.read_head()
            resp = Response(version, status, reason, headers)
            if 100 <= status < 200:
                if skip_1xx:
                    continue
                return resp
            break
        if head or status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", f"unexpected transfer-encoding {te!r}"
            assert cl is None, "both content-length and transfer-encoding in response"
            resp.chunked = True
            body = bytearray()
            while True:
                size_line = self._line()
                size_txt = size_line.split(b";", 1)[0].strip()
                assert re.fullmatch(rb"[0-9a-fA-F]+", size_txt), f"bad chunk size {size_line!r}"
                size = int(size_txt, 16)
                if size == 0:
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n", "chunk not followed by CRLF"
                assert len(body) <= max_body, "response body too large"
            resp.trailers = self._headers()
            resp.body = bytes(body)
        elif cl is not None:
            resp.body = self._exact(int(cl))
        else:
            # close-delimited
            body = bytearray(self.buf)
            self.buf.clear()
            while True:
                try:
                    self._fill()
                except ConnectionClosed:
                    break
                body += self.buf
                self.buf.clear()
                assert len(body) <= max_body, "response body too large"
            resp.body = bytes(body)
        return resp

    def request(self, method, path, headers=(), body=None, head=False):
        """Sends one request (with Host and, for a body, Content-Length) and reads the answer."""
        self.send(build_request(method, path, headers, body))
        return self.read_response(head=head or method == "HEAD")

    def wait_closed(self, timeout):
        closed, data, elapsed = wait_closed(self.sock, timeout)
        return closed, bytes(self.buf) + data, elapsed


def build_request(method, path, headers=(), body=None, version="HTTP/1.1", host=True):
    lines = [f"{method} {path} {version}"]
    names = {k.lower() for k, _ in headers}
    if host and "host" not in names:
        lines.append("Host: localhost")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body
    return data


def http_get(port, path, timeout=DEFAULT_TIMEOUT, headers=()):
    """One GET on a fresh connection."""
    with H1Conn(port, timeout) as c:
        return c.request("GET", path, headers=headers)


def chunked(parts):
    """Encodes byte strings as an HTTP/1.1 chunked body (with the final 0 chunk)."""
    out = bytearray()
    for p in parts:
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


# --------------------------------------------------------------------------------------------
# metrics


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text):
    """Prometheus text -> {(name, labels-string-or-''): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        assert m, f"bad metrics line {line!r}"
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def metric_sum(metrics, name, **labels):
    """Sum of the samples of name whose labels include every given label=value."""
    total = 0.0
    found = False
    for (n, lab), v in metrics.items():
        if n != name:
            continue
        if all(f'{k}="{val}"' in lab for k, val in labels.items()):
            total += v
            found = True
    return total if found else None


def get_metrics(port):
    r = http_get(port, "/metrics")
    assert r.status == 200, r
    return parse_metrics(r.body.decode())


# --------------------------------------------------------------------------------------------
# HTTP/2 raw client

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
             4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
             7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
             11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}


def h2_frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


def h2_settings(pairs=(), ack=False):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in pairs)
    return h2_frame(SETTINGS, FLAG_ACK if ack else 0, 0, payload)


def h2_rst(stream_id, code=8):
    return h2_frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def h2_window_update(stream_id, inc):
    return h2_frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", inc))


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """HPACK integer encoding (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7) + s  # no Huffman


def hpack_request(method="GET", path="/", authority="localhost", scheme="http", headers=()):
    """A header block using only static-table indexes and literals without indexing, so it
    never touches the peer's dynamic table."""
    out = bytearray()
    if method == "GET":
        out.append(0x82)  # :method GET
    elif method == "POST":
        out.append(0x83)  # :method POST
    else:
        out += hpack_int(2, 4) + hpack_str(method)  # literal, name :method (index 2)
    if path == "/":
        out.append(0x84)  # :path /
    else:
        out += hpack_int(4, 4) + hpack_str(path)  # literal, name :path (index 4)
    out.append(0x86 if scheme == "http" else 0x87)  # :scheme http / https
    out += hpack_int(1, 4) + hpack_str(authority)  # literal, name :authority (index 1)
    for k, v in headers:
        out += b"\x00" + hpack_str(k.lower()) + hpack_str(v)
    return bytes(out)


def h2_headers(stream_id, block, end_stream=True):
    flags = FLAG_END_HEADERS | (FLAG_END_STREAM if end_stream else 0)
    return h2_frame(HEADERS, flags, stream_id, block)


class Frame:
    __slots__ = ("type", "flags", "stream_id", "payload")

    def __init__(self, ftype, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = ftype, flags, stream_id, payload

    def settings(self):
        assert self.type == SETTINGS
        return [struct.unpack(">HI", self.payload[i:i + 6])
                for i in range(0, len(self.payload) - 5, 6)]

    def goaway(self):
        """(last_stream_id, error_code, debug)"""
        assert self.type == GOAWAY
        last, code = struct.unpack(">II", self.payload[:8])
        return last & 0x7FFFFFFF, code, self.payload[8:]

    def data_len(self):
        """Bytes of DATA payload (excluding padding)."""
        if self.flags & FLAG_PADDED:
            return len(self.payload) - 1 - self.payload[0]
        return len(self.payload)

    def data(self):
        if self.flags & FLAG_PADDED:
            pad = self.payload[0]
            return self.payload[1:len(self.payload) - pad]
        return self.payload

    def __repr__(self):
        return f"<Frame type={self.type} flags={self.flags:#x} sid={self.stream_id} len={len(self.payload)}>"


def parse_frames(buf):
    """Takes complete frames off the front of the bytearray buf."""
    frames = []
    while len(buf) >= 9:
        length = int.from_bytes(buf[0:3], "big")
        if len(buf) < 9 + length:
            break
        ftype, flags = buf[3], buf[4]
        sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        frames.append(Frame(ftype, flags, sid, bytes(buf[9:9 + length])))
        del buf[:9 + length]
    return frames


class H2Raw:
    """A raw HTTP/2 client connection. Frames are read on demand (read_frames) or, with
    start_reader(), continuously by a background thread (for floods that must not block on a
    full socket buffer)."""

    def __init__(self, port, timeout=DEFAULT_TIMEOUT, settings=(), send_preface=True):
        self.sock = connect(port, timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.frames = []
        self.closed = False
        self.lock = threading.Lock()
        self._reader = None
        self._stop = False
        if send_preface:
            self.sock.sendall(H2_PREFACE + h2_settings(settings))

    def send(self, data):
        self.sock.sendall(data)

    def _recv_some(self, timeout):
        # select, then recv: the socket's own timeout never changes, so a sender thread and
        # the reader thread can share the socket.
        try:
            ready, _, _ = select.select([self.sock], [], [], timeout)
        except (ValueError, OSError):
            self.closed = True
            return -1
        if not ready:
            return 0
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return 0
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            chunk = b""
        except OSError as e:
            if e.errno in (errno.EBADF, errno.ENOTCONN):
                chunk = b""
            else:
                raise
        if not chunk:
            self.closed = True
            return -1
        self.buf += chunk
        got = parse_frames(self.buf)
        with self.lock:
            self.frames += got
        return len(chunk)

    def read_frames(self, timeout, until=None):
        """Reads for up to timeout seconds, or until until(frames) is true or the connection
        closes. Returns all frames received so far."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if until is not None and until(self.frames):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._recv_some(min(left, 0.25))
        return self.frames

    def start_reader(self):
        def run():
            while not self._stop and not self.closed:
                try:
                    self._recv_some(0.25)
                except OSError:
                    self.closed = True
        self._reader = threading.Thread(target=run, daemon=True)
        self._reader.start()

    def stop_reader(self):
        self._stop = True
        if self._reader:
            self._reader.join(5)

    def wait_reader(self, timeout, until):
        """With the reader thread running: waits for until(frames, closed) to be true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                frames = list(self.frames)
            if until(frames, self.closed):
                return True
            time.sleep(0.05)
        return False

    def ack_settings(self):
        self.send(h2_settings(ack=True))

    def goaways(self):
        return [f for f in self.frames if f.type == GOAWAY]

    def stream_data(self, stream_id):
        return b"".join(f.data() for f in self.frames if f.type == DATA and f.stream_id == stream_id)

    def stream_ended(self, stream_id):
        return any(f.stream_id == stream_id and f.type in (DATA, HEADERS) and f.flags & FLAG_END_STREAM
                   for f in self.frames)

    def close(self):
        self.stop_reader()
        try:
            self.sock.close()
        except OSError:
            pass


def first_header_block_status(frames, stream_id):
    """The :status of the first HEADERS frame of a stream, when the server encoded it as a
    static-table index (nghttp2 does for 200/204/206/304/400/404/500); otherwise None."""
    static = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}
    for f in frames:
        if f.type == HEADERS and f.stream_id == stream_id:
            block = f.payload
            if f.flags & FLAG_PADDED:
                block = block[1:len(block) - block[0]]
            if f.flags & FLAG_PRIORITY:
                block = block[5:]
            i = 0
            # skip dynamic table size updates (001xxxxx)
            while i < len(block) and block[i] & 0xE0 == 0x20:
                i += 1
            if i < len(block):
                return static.get(block[i])
            return None
    return None


# --------------------------------------------------------------------------------------------
# subprocess clients


def run(cmd, timeout=60, check_rc=None, input=None, cwd=None):
    """Runs a client; returns CompletedProcess with text output. A client that hangs past
    timeout fails the test."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           input=input, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"client timed out after {timeout}s: {cmd}\nstdout: "
                             f"{(e.stdout or b'')[-2000:]!r}\nstderr: {(e.stderr or b'')[-2000:]!r}")
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    if check_rc is not None:
        assert p.returncode == check_rc, \
            f"{cmd} exited {p.returncode}, want {check_rc}\nstdout:\n{p.out[-3000:]}\nstderr:\n{p.err[-3000:]}"
    return p


def curl(*args, timeout=30, check_rc=0):
    return run(["curl", "-sS", "--max-time", str(max(1, int(timeout) - 2))] + list(args),
               timeout=timeout, check_rc=check_rc)


def split_head_body(raw):
    """curl -i output -> (list of header blocks, body bytes). With interim responses or
    HTTP/2 upgrades there may be several header blocks."""
    blocks = []
    rest = raw
    while rest.startswith(b"HTTP/"):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"no end of headers in {raw[:500]!r}"
        blocks.append(head.decode("latin-1"))
    return blocks, rest


def nghttp_stats(output):
    """Rows of `nghttp -s` statistics: list of (code, size, path)."""
    rows = []
    for line in output.splitlines():
        m = re.match(r"^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+(\d+)\s+(\d+)\s+(\S+)\s*$", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return rows


def h2load_check(output, n):
    """Asserts an h2load summary shows n requests all succeeded with 2xx."""
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", output)
    assert m, f"no h2load summary in:\n{output[-3000:]}"
    total, started, done, ok, failed, errored, tmo = map(int, m.groups())
    assert (ok, failed, errored, tmo) == (n, 0, 0, 0), f"h2load: {m.group(0)}\n{output[-3000:]}"
    m2 = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    assert m2 and int(m2.group(1)) == n, f"h2load status codes: {m2 and m2.group(0)}"


# --------------------------------------------------------------------------------------------
# a well-behaved client running alongside bad input


class BackgroundClient:
    """A thread that loops GET /healthz over one keep-alive connection and records every
    result. Bad input on other connections must not make it see anything but 200 "ok\\n"."""

    def __init__(self, port, interval=0.01, timeout=5.0):
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.ok = 0
        self.failures = []  # descriptions of everything that was not a 200 "ok\n"
        self.max_latency = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = H1Conn(self.port, self.timeout)
                t0 = time.monotonic()
                r = conn.request("GET", "/healthz")
                dt = time.monotonic() - t0
                self.max_latency = max(self.max_latency, dt)
                if r.status == 200 and r.body == b"ok\n":
                    self.ok += 1
                else:
                    self.failures.append(f"status {r.status} body {r.body[:60]!r}")
                if (r.header("connection") or "").lower() == "close":
                    self.failures.append("server sent connection: close to a keep-alive client")
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                self.failures.append(f"{type(e).__name__}: {e}")
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(0.1)
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def start(self):
        self._thread.start()
        # make sure it is up and getting answers before the bad input starts
        deadline = time.monotonic() + 5
        while self.ok == 0 and not self.failures and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop_and_check(self, min_ok=3, more_after=2):
        """Lets the client get more_after further answers (the server still works after the
        bad input), then stops it and asserts it saw nothing but 200 "ok\\n"."""
        want = self.ok + more_after
        deadline = time.monotonic() + self.timeout
        while self.ok < max(want, min_ok) and not self.failures and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(self.timeout + 2)
        assert not self._thread.is_alive(), "background client hung"
        assert not self.failures, f"background client saw failures: {self.failures[:10]}"
        assert self.ok >= min_ok, f"background client got only {self.ok} answers"


def env_path(name, default_rel):
    v = os.environ.get(name)
    if v:
        return v
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", default_rel))
