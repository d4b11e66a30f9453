"""gRPC-Web served natively (no proxy): the items example over HTTP/1.1 (http.client) and
HTTP/2 (curl), binary and text (base64) bodies, trailers in the body's last frame, CORS
preflight and headers, Trailers-Only errors, and no streaming requests. Messages are built with
the stubs generated from items.proto, as a browser client library would encode them."""

import base64
import http.client
import struct

import pytest

import grpc_stubs
from helpers import curl

pb, _ = grpc_stubs.items()
TIMEOUT = 10
WEB = "application/grpc-web+proto"
TEXT = "application/grpc-web-text+proto"


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


def frame(msg, flag=0):
    b = msg.SerializeToString()
    return struct.pack(">BI", flag, len(b)) + b


def parse(body):
    """(messages as bytes, trailers dict) from a gRPC-Web response body."""
    msgs, trailers, i = [], {}, 0
    while i < len(body):
        flag, n = struct.unpack(">BI", body[i:i + 5])
        payload = body[i + 5:i + 5 + n]
        assert len(payload) == n, "truncated frame"
        i += 5 + n
        if flag & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    k, _, v = line.partition(":")
                    trailers[k.strip()] = v.strip()
        else:
            msgs.append(payload)
    return msgs, trailers


def post(port, path, body, ctype=WEB, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    h = {"content-type": ctype, "x-grpc-web": "1", "origin": "http://page.test"}
    h.update(headers or {})
    c.request("POST", path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    if ctype.startswith("application/grpc-web-text"):
        # Each response write is its own padded base64 run: decode group by group.
        data = b"".join(base64.b64decode(data[i:i + 4]) for i in range(0, len(data), 4))
    return r, data


def create(port, name):
    r, data = post(port, "/items.v1.ItemService/CreateItem",
                   frame(pb.CreateItemRequest(name=name, price=1.5)))
    msgs, trailers = parse(data)
    assert r.status == 200 and trailers["grpc-status"] == "0"
    return pb.Item.FromString(msgs[0])


@pytest.mark.parametrize("ctype", [WEB, TEXT])
def test_unary_over_http1(items, ctype):
    it = create(items.port, "lamp")
    body = frame(pb.GetItemRequest(id=it.id))
    if ctype == TEXT:
        body = base64.b64encode(body)
    r, data = post(items.port, "/items.v1.ItemService/GetItem", body, ctype)
    assert r.status == 200 and r.getheader("content-type") == ctype
    assert r.getheader("access-control-allow-origin") == "http://page.test"
    assert "grpc-status" in r.getheader("access-control-expose-headers")
    msgs, trailers = parse(data)
    assert [pb.Item.FromString(m).name for m in msgs] == ["lamp"]
    assert trailers == {"grpc-status": "0"}


def test_text_request_in_padded_pieces(items):
    # A client may encode each write alone: padded groups in the middle of the body.
    it = create(items.port, "pieces")
    raw = frame(pb.GetItemRequest(id=it.id))
    body = base64.b64encode(raw[:4]) + base64.b64encode(raw[4:])
    r, data = post(items.port, "/items.v1.ItemService/GetItem", body, TEXT)
    msgs, trailers = parse(data)
    assert trailers["grpc-status"] == "0" and pb.Item.FromString(msgs[0]).name == "pieces"


def test_server_streaming(items):
    for name in ("a", "b", "c"):
        create(items.port, name)
    r, data = post(items.port, "/items.v1.ItemService/WatchItems",
                   frame(pb.WatchItemsRequest(since_id=1)))
    msgs, trailers = parse(data)
    assert [pb.ItemEvent.FromString(m).item.name for m in msgs] == ["b", "c"]
    assert trailers["grpc-status"] == "0"


def test_errors(items):
    r, data = post(items.port, "/items.v1.ItemService/GetItem", frame(pb.GetItemRequest(id=9)))
    # Trailers-Only: the status in the headers, nothing in the body.
    assert r.status == 200 and data == b""
    assert r.getheader("grpc-status") == "5" and r.getheader("grpc-message") == "item 9 not found"
    r, _ = post(items.port, "/items.v1.ItemService/Nope", frame(pb.GetItemRequest(id=9)))
    assert r.getheader("grpc-status") == "12"
    r, _ = post(items.port, "/items.v1.ItemService/GetItem", b"!!!!", TEXT)
    assert r.getheader("grpc-status") == "13"


def test_streaming_requests_refused(server_factory):
    srv = server_factory(kind="interop")
    r, _ = post(srv.port, "/grpc.testing.TestService/StreamingInputCall", b"")
    assert r.getheader("grpc-status") == "12"


def test_cors_preflight(items):
    c = http.client.HTTPConnection("127.0.0.1", items.port, timeout=TIMEOUT)
    c.request("OPTIONS", "/items.v1.ItemService/GetItem", headers={
        "origin": "http://page.test", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web,x-custom"})
    r = c.getresponse()
    r.read()
    assert r.status == 204
    assert r.getheader("access-control-allow-origin") == "http://page.test"
    assert "POST" in r.getheader("access-control-allow-methods")
    assert r.getheader("access-control-allow-headers") == "content-type,x-grpc-web,x-custom"
    c.close()


def test_http2(items, tmp_path):
    it = create(items.port, "h2")
    req = tmp_path / "req.bin"
    req.write_bytes(frame(pb.GetItemRequest(id=it.id)))
    r = curl("-s", "--http2-prior-knowledge", "-H", f"content-type: {WEB}",
             "--data-binary", f"@{req}", f"http://127.0.0.1:{items.port}"
             "/items.v1.ItemService/GetItem")
    msgs, trailers = parse(r.stdout)
    assert pb.Item.FromString(msgs[0]).name == "h2" and trailers["grpc-status"] == "0"
