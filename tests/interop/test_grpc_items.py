"""gRPC from a .proto contract: the items example (examples/items) served over gRPC on the same
port as REST, with Debian's grpcio as the client (stubs generated at test time from
items.proto), over h2c and over TLS; and bad input sent with a raw HTTP/2 client (python3-h2),
each answered with the right status while the connection keeps serving other streams."""

import socket
import struct

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

import grpc_stubs
from helpers import curl, run

pb, pbg = grpc_stubs.items()
TIMEOUT = 10
GET_ITEM = "/items.v1.ItemService/GetItem"


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


@pytest.fixture
def stub(items):
    ch = grpc.insecure_channel(f"127.0.0.1:{items.port}")
    yield pbg.ItemServiceStub(ch)
    ch.close()


def test_unary_and_errors(stub):
    it = stub.CreateItem(pb.CreateItemRequest(name="lamp", price=12.5), timeout=TIMEOUT)
    assert (it.id, it.name, it.price) == (1, "lamp", 12.5)
    assert stub.GetItem(pb.GetItemRequest(id=1), timeout=TIMEOUT) == it
    with pytest.raises(grpc.RpcError) as e:
        stub.GetItem(pb.GetItemRequest(id=42), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "item 42 not found"
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateItem(pb.CreateItemRequest(name=""), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _fields(buf):
    """Decodes protobuf wire bytes into [(field, value)] (varints and length-delimited only)."""
    out, i = [], 0
    def varint():
        nonlocal i
        v = shift = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = varint()
        if key & 7 == 0:
            out.append((key >> 3, varint()))
        else:
            assert key & 7 == 2, key
            n = varint()
            out.append((key >> 3, bytes(buf[i:i + n])))
            i += n
    return out


def test_validation_rules_send_bad_request_details(stub):
    # The contract's rules run before the handler for gRPC exactly as for REST; the violations
    # arrive as a google.rpc.Status with a BadRequest in grpc-status-details-bin.
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateItem(pb.CreateItemRequest(name="", price=-1), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == ("invalid request: name: must be at least 1 character "
                                 "(and 1 more violation)")
    raw = dict(e.value.trailing_metadata())["grpc-status-details-bin"]
    status = _fields(raw)
    assert status[0] == (1, 3)
    assert status[1] == (2, e.value.details().encode())
    [(_, any_bytes)] = [f for f in status if f[0] == 3]
    any_fields = dict(_fields(any_bytes))
    assert any_fields[1] == b"type.googleapis.com/google.rpc.BadRequest"
    violations = [dict(_fields(v)) for _, v in _fields(any_fields[2])]
    assert violations == [
        {1: b"name", 2: b"must be at least 1 character"},
        {1: b"price", 2: b"must be at least 0"},
    ]


def test_list_and_watch(stub):
    for name in ("a", "b", "c"):
        stub.CreateItem(pb.CreateItemRequest(name=name, price=1), timeout=TIMEOUT)
    res = stub.ListItems(pb.ListItemsRequest(page_size=2), timeout=TIMEOUT)
    assert [i.name for i in res.items] == ["a", "b"] and res.next_page_token == "3"
    events = list(stub.WatchItems(pb.WatchItemsRequest(since_id=1), timeout=TIMEOUT))
    assert [e.item.name for e in events] == ["b", "c"]


def test_gzip_both_ways(stub):
    # 200 characters: the longest name the contract's rules allow
    stub.CreateItem(pb.CreateItemRequest(name="x" * 200, price=2), timeout=TIMEOUT,
                    compression=grpc.Compression.Gzip)
    it = stub.GetItem(pb.GetItemRequest(id=1), timeout=TIMEOUT, compression=grpc.Compression.Gzip)
    assert it.name == "x" * 200


def test_rest_and_grpc_share_the_port(items, stub):
    stub.CreateItem(pb.CreateItemRequest(name="shared", price=3), timeout=TIMEOUT)
    r = curl("-s", f"http://127.0.0.1:{items.port}/items/1")
    assert '"name":"shared"' in r.stdout.decode()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(crt)],
        timeout=30, check_rc=0)
    return crt, key


def test_tls(server_factory, cert):
    crt, key = cert
    srv = server_factory("--tls-cert", crt, "--tls-key", key, kind="items")
    creds = grpc.ssl_channel_credentials(root_certificates=crt.read_bytes())
    ch = grpc.secure_channel(f"localhost:{srv.port}", creds)
    s = pbg.ItemServiceStub(ch)
    it = s.CreateItem(pb.CreateItemRequest(name="secure", price=1), timeout=TIMEOUT)
    assert s.GetItem(pb.GetItemRequest(id=it.id), timeout=TIMEOUT).name == "secure"
    assert [e.item.name for e in s.WatchItems(pb.WatchItemsRequest(), timeout=TIMEOUT)] == \
        ["secure"]
    ch.close()


# ---- raw HTTP/2: bad input ----

class Raw:
    """One HTTP/2 connection driven by python3-h2; streams are sent by hand, so any bytes can
    go in a body."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def request(self, path=GET_ITEM, body=b"", end=True, headers=(), ctype="application/grpc"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
                (":path", path), ("te", "trailers")]
        if ctype:
            hdrs.append(("content-type", ctype))
        self.conn.send_headers(sid, hdrs + list(headers), end_stream=not body and end)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        self.streams[sid] = {"headers": [], "data": b"", "trailers": [], "done": False,
                             "reset": None}
        return sid

    def wait(self, sid):
        """Reads until stream sid ends; returns its record."""
        st = self.streams[sid]
        while not st["done"]:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            for ev in self.conn.receive_data(data):
                s = self.streams.get(getattr(ev, "stream_id", None))
                if isinstance(ev, h2.events.ResponseReceived):
                    s["headers"] = dict((k.decode(), v.decode()) for k, v in ev.headers)
                elif isinstance(ev, h2.events.TrailersReceived):
                    s["trailers"] = dict((k.decode(), v.decode()) for k, v in ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    s["data"] += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    s["done"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    s["done"], s["reset"] = True, ev.error_code
            self.flush()
        return st

    def status(self, sid):
        st = self.wait(sid)
        fields = st["trailers"] or st["headers"]
        return int(fields.get("grpc-status", "-1")), fields.get("grpc-message", ""), st


def frame(payload, flag=0, length=None):
    return struct.pack(">BI", flag, len(payload) if length is None else length) + payload


GOOD = frame(pb.GetItemRequest(id=1).SerializeToString())


@pytest.fixture
def raw(items, stub):
    stub.CreateItem(pb.CreateItemRequest(name="one", price=1), timeout=TIMEOUT)
    r = Raw(items.port)
    yield r
    r.sock.close()


def good_call_still_works(raw):
    code, _, st = raw.status(raw.request(body=GOOD))
    assert code == 0 and st["data"][5:] == pb.Item(id=1, name="one", price=1).SerializeToString()


@pytest.mark.parametrize("body,headers,want", [
    (GOOD[:6], (), 13),                                   # truncated message
    (b"\x02" + GOOD[1:], (), 13),                         # bad flag byte
    (frame(b"", length=5 << 20), (), 8),                  # over the 4 MiB limit
    (frame(b"\xff\xff\xff"), (), 13),                     # not protobuf
    (frame(pb.GetItemRequest(id=1).SerializeToString(), flag=1), (), 13),  # compressed, no encoding
    (frame(b"\x1f\x8b garbage", flag=1), (("grpc-encoding", "gzip"),), 13),  # corrupt gzip
    (GOOD + GOOD, (), 13),                                # two messages for a unary method
    (b"", (), 13),                                        # no message at all
    (GOOD, (("grpc-encoding", "snappy"),), 12),           # unknown encoding
    (GOOD, (("grpc-timeout", "abc"),), 3),                # malformed timeout
])
def test_bad_input_gets_a_status(raw, body, headers, want):
    code, msg, st = raw.status(raw.request(body=body, headers=headers))
    assert code == want, (msg, st)
    assert st["headers"].get(":status") == "200"
    good_call_still_works(raw)


def test_unknown_method_and_service(raw):
    for path in ("/items.v1.ItemService/Nope", "/no.Such/Method"):
        code, _, st = raw.status(raw.request(path=path, body=GOOD))
        assert code == 12
        assert not st["trailers"], "an early error is Trailers-Only"
    good_call_still_works(raw)


def test_server_deadline(raw):
    # The request never ends; the server's deadline does.
    sid = raw.request(body=GOOD[:3], end=False, headers=(("grpc-timeout", "200m"),))
    code, msg, _ = raw.status(sid)
    assert code == 4 and msg == "deadline exceeded"
    good_call_still_works(raw)


def test_http_level_errors(raw, items):
    assert raw.wait(raw.request(body=GOOD, ctype="application/grpc+json"))["headers"][
        ":status"] == "415"
    good_call_still_works(raw)
    r = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "--http1.1", "-X", "POST",
             "-H", "content-type: application/grpc", "--data-binary", "x",
             f"http://127.0.0.1:{items.port}{GET_ITEM}")
    assert r.stdout.decode() == "505"


def test_reset_stream_cancels(raw):
    sid = raw.request(body=GOOD[:3], end=False)
    raw.conn.reset_stream(sid)
    raw.flush()
    good_call_still_works(raw)


def test_keepalive_ping_answered(raw):
    # gRPC clients send PINGs to keep connections alive: each is acknowledged.
    raw.conn.ping(b"sbgrpc01")
    raw.flush()
    acked = False
    while not acked:
        data = raw.sock.recv(65536)
        assert data, "connection closed"
        for ev in raw.conn.receive_data(data):
            acked = acked or (isinstance(ev, h2.events.PingAckReceived) and
                              ev.ping_data == b"sbgrpc01")
    good_call_still_works(raw)
