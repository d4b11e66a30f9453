"""The Connect protocol on the same port as REST and gRPC: unary calls with JSON and binary
bodies (POST, and GET for side-effect-free methods), Connect's error JSON and status mapping,
trailers as trailer- headers, and the streaming protocol (envelopes, end-of-stream message with
error and metadata, Connect-Timeout-Ms), over HTTP/1.1 (http.client) and HTTP/2 (curl). The
wire format follows the Connect protocol specification; messages come from the stubs generated
from the contracts."""

import base64
import gzip
import http.client
import json
import struct
import urllib.parse

import pytest

import grpc_stubs
from helpers import curl

pb, _ = grpc_stubs.items()
_, M, _ = grpc_stubs.interop()
TIMEOUT = 10
CV = {"connect-protocol-version": "1"}


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


@pytest.fixture
def interop(server_factory):
    return server_factory(kind="interop")


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def unary_json(port, method, msg, headers=None):
    h = {"content-type": "application/json", **CV, **(headers or {})}
    r, data = request(port, "POST", f"/items.v1.ItemService/{method}", json.dumps(msg), h)
    return r, json.loads(data) if data else None


def envelope(payload, flags=0):
    return struct.pack(">BI", flags, len(payload)) + payload


def envelopes(body):
    out, i = [], 0
    while i < len(body):
        flags, n = struct.unpack(">BI", body[i:i + 5])
        out.append((flags, body[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def test_unary_json_and_errors(items):
    r, b = unary_json(items.port, "CreateItem", {"name": "lamp", "price": 12.5})
    assert r.status == 200 and r.getheader("content-type") == "application/json"
    assert b == {"id": 1, "name": "lamp", "price": 12.5}
    r, b = unary_json(items.port, "GetItem", {"id": 42})
    assert r.status == 404 and r.getheader("content-type") == "application/json"
    assert b["code"] == "not_found" and b["message"] == "item 42 not found"
    r, b = unary_json(items.port, "CreateItem", {"name": ""})
    assert r.status == 400 and b["code"] == "invalid_argument"
    r, b = unary_json(items.port, "GetItem", {"id": "not a number"})
    assert r.status == 400 and b["code"] == "invalid_argument"
    r, b = unary_json(items.port, "Nope", {})
    assert b["code"] == "unimplemented"


def test_unary_proto_and_gzip(items):
    unary_json(items.port, "CreateItem", {"name": "bin", "price": 1})
    h = {"content-type": "application/proto", "accept-encoding": "gzip"}
    r, data = request(items.port, "POST", "/items.v1.ItemService/GetItem",
                      pb.GetItemRequest(id=1).SerializeToString(), h)
    assert r.status == 200 and r.getheader("content-type") == "application/proto"
    assert pb.Item.FromString(data).name == "bin"
    h["content-encoding"] = "gzip"
    r, data = request(items.port, "POST", "/items.v1.ItemService/GetItem",
                      gzip.compress(pb.GetItemRequest(id=1).SerializeToString()), h)
    assert r.status == 200 and pb.Item.FromString(data).name == "bin"


def test_rest_keeps_its_route(items):
    # The same path without Connect-Protocol-Version is still REST (numeric error codes).
    r, data = request(items.port, "POST", "/items.v1.ItemService/GetItem", '{"id": 7}',
                      {"content-type": "application/json"})
    assert r.status == 404 and json.loads(data)["code"] == 5


def test_get(items):
    unary_json(items.port, "CreateItem", {"name": "cached", "price": 3})
    q = urllib.parse.urlencode({"connect": "v1", "encoding": "json", "message": '{"id":1}'})
    r = curl("-s", f"http://127.0.0.1:{items.port}/items.v1.ItemService/GetItem?{q}")
    assert json.loads(r.stdout)["name"] == "cached"
    msg = base64.urlsafe_b64encode(pb.GetItemRequest(id=1).SerializeToString()).decode()
    q = urllib.parse.urlencode({"connect": "v1", "encoding": "proto", "base64": "1",
                                "message": msg})
    r, data = request(items.port, "GET", f"/items.v1.ItemService/GetItem?{q}")
    assert r.status == 200 and pb.Item.FromString(data).name == "cached"
    # Only side-effect-free methods may be called with GET.
    q = urllib.parse.urlencode({"connect": "v1", "encoding": "json", "message": '{"name":"x"}'})
    r, data = request(items.port, "GET", f"/items.v1.ItemService/CreateItem?{q}")
    assert r.status != 200 and json.loads(data)["code"] == "unimplemented"


def test_unary_trailers_as_headers(interop):
    h = {"content-type": "application/json", **CV,
         "x-grpc-test-echo-initial": "hello", "x-grpc-test-echo-trailing-bin": "q6ur"}
    r, data = request(interop.port, "POST", "/grpc.testing.TestService/UnaryCall",
                      json.dumps({"responseSize": 3}), h)
    assert r.status == 200 and json.loads(data) == {"payload": {"body": "AAAA"}}
    assert r.getheader("x-grpc-test-echo-initial") == "hello"
    assert r.getheader("trailer-x-grpc-test-echo-trailing-bin") == "q6ur"


def test_server_stream_json(items):
    for name in ("a", "b", "c"):
        unary_json(items.port, "CreateItem", {"name": name, "price": 1})
    h = {"content-type": "application/connect+json"}
    r, data = request(items.port, "POST", "/items.v1.ItemService/WatchItems",
                      envelope(b'{"sinceId": 1}'), h)
    assert r.status == 200 and r.getheader("content-type") == "application/connect+json"
    env = envelopes(data)
    assert [json.loads(p)["item"]["name"] for f, p in env[:-1]] == ["b", "c"]
    assert env[-1] == (2, b"{}")


def test_client_stream_and_stream_errors(interop):
    h = {"content-type": "application/connect+proto"}
    body = b"".join(envelope(M.StreamingInputCallRequest(
        payload=M.Payload(body=b"\0" * n)).SerializeToString()) for n in (3, 4, 5))
    r, data = request(interop.port, "POST", "/grpc.testing.TestService/StreamingInputCall",
                      body, h)
    env = envelopes(data)
    assert M.StreamingInputCallResponse.FromString(env[0][1]).aggregated_payload_size == 12
    assert env[-1][0] == 2
    req = M.StreamingOutputCallRequest(response_status=M.EchoStatus(code=5, message="gone"))
    r, data = request(interop.port, "POST", "/grpc.testing.TestService/FullDuplexCall",
                      envelope(req.SerializeToString()), h)
    end = envelopes(data)[-1]
    assert r.status == 200 and end[0] == 2
    assert json.loads(end[1])["error"] == {"code": "not_found", "message": "gone", "details": []}


def test_stream_timeout(interop):
    req = M.StreamingOutputCallRequest(response_parameters=[
        M.ResponseParameters(size=1, interval_us=2000000)])
    h = {"content-type": "application/connect+proto", "connect-timeout-ms": "200"}
    r, data = request(interop.port, "POST", "/grpc.testing.TestService/StreamingOutputCall",
                      envelope(req.SerializeToString()), h)
    end = envelopes(data)[-1]
    assert end[0] == 2 and json.loads(end[1])["error"]["code"] == "deadline_exceeded"


def test_http2(items, tmp_path):
    unary_json(items.port, "CreateItem", {"name": "h2", "price": 1})
    r = curl("-s", "--http2-prior-knowledge", "-H", "content-type: application/json",
             "-H", "connect-protocol-version: 1", "--data-binary", '{"id": 1}',
             f"http://127.0.0.1:{items.port}/items.v1.ItemService/GetItem")
    assert json.loads(r.stdout)["name"] == "h2"
