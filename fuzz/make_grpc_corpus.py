#!/usr/bin/env python3
"""Writes the seed corpus of grpc_fuzz (fuzz/corpus/grpc/): one selector byte (method,
protocol, gzip, timeout, DATA frame size; see grpc_fuzz.c) and a request body (length-prefixed
messages, or one JSON message for Connect unary), encoded with stubs generated from the same
.proto files the target serves.

    /usr/bin/python3 fuzz/make_grpc_corpus.py
"""

import base64
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import grpc_stubs  # noqa: E402

_, M, _ = grpc_stubs.interop()
_, _, r1, _, _, _ = grpc_stubs.services()
hpb = grpc_stubs.services()[0]

UNARY, OUT, IN, FULL, EMPTY, REFL, REFL_ALPHA, HEALTH = range(8)
GRPC, WEB_TEXT, CONNECT_STREAM, CONNECT_JSON = 0, 8, 16, 24
GZIP, TIMEOUT, SMALL_FRAMES = 32, 64, 128


def frame(msg, compress=False):
    b = msg.SerializeToString()
    if compress:
        b = gzip.compress(b)
    return struct.pack(">BI", 1 if compress else 0, len(b)) + b


def sel(method, flags=0):
    return bytes([method | flags])


def out_req(*sizes, status=None):
    r = M.StreamingOutputCallRequest(response_parameters=[
        M.ResponseParameters(size=s, compressed=M.BoolValue(value=bool(i % 2)))
        for i, s in enumerate(sizes)])
    if status:
        r.response_status.code, r.response_status.message = status
    return r


seeds = {
    "unary": sel(UNARY) + frame(M.SimpleRequest(response_size=10,
                                                payload=M.Payload(body=b"abc"))),
    "unary_gzip_cut": sel(UNARY, GZIP | SMALL_FRAMES) + frame(
        M.SimpleRequest(response_size=100, response_compressed=M.BoolValue(value=True)), True),
    "unary_status": sel(UNARY, TIMEOUT | SMALL_FRAMES) + frame(
        M.SimpleRequest(response_status=M.EchoStatus(code=2, message="\t\nbad \u263a"))),
    "unary_two_messages": sel(UNARY) + frame(M.SimpleRequest()) * 2,
    "unary_truncated": sel(UNARY) + frame(M.SimpleRequest(response_size=5))[:-1],
    "unary_bad_flag": sel(UNARY) + b"\x07\x00\x00\x00\x00",
    "unary_compressed_no_encoding": sel(UNARY) + frame(M.SimpleRequest(), True),
    "server_stream": sel(OUT, SMALL_FRAMES) + frame(out_req(1, 2, 3, 4000)),
    "client_stream": sel(IN, GZIP | SMALL_FRAMES) + b"".join(
        frame(M.StreamingInputCallRequest(payload=M.Payload(body=b"x" * n)), n % 2 == 0)
        for n in (1, 2, 3, 300)),
    "full_duplex": sel(FULL, SMALL_FRAMES) + frame(out_req(5)) + frame(out_req(6, 7)) +
    frame(out_req(status=(5, "not found"))),
    "empty": sel(EMPTY, TIMEOUT | SMALL_FRAMES) + struct.pack(">BI", 0, 0),
    "empty_connect": sel(EMPTY, CONNECT_JSON) + b"{}",
    "empty_stream": sel(FULL),
    "reflection_list": sel(REFL) + frame(r1.ServerReflectionRequest(list_services="")),
    "reflection_symbols": sel(REFL, SMALL_FRAMES) + b"".join(
        frame(r1.ServerReflectionRequest(file_containing_symbol=s))
        for s in ("grpc.testing.TestService.UnaryCall", "grpc.testing.Payload",
                  ".grpc.health.v1.HealthCheckResponse.ServingStatus", "no.Such")),
    "reflection_alpha_file": sel(REFL_ALPHA) + frame(
        r1.ServerReflectionRequest(file_by_filename="test.proto")) + frame(
        r1.ServerReflectionRequest(all_extension_numbers_of_type="x")),
    "web_text_unary": sel(UNARY, WEB_TEXT | SMALL_FRAMES) + base64.b64encode(
        frame(M.SimpleRequest(response_size=3))[:4]) + base64.b64encode(
        frame(M.SimpleRequest(response_size=3))[4:]),
    "web_text_server_stream": sel(OUT, WEB_TEXT) + base64.b64encode(frame(out_req(1, 2))),
    "connect_stream_full_duplex": sel(FULL, CONNECT_STREAM | SMALL_FRAMES) + frame(out_req(3)) +
    frame(out_req(status=(2, "x"))),
    "connect_stream_input_gzip": sel(IN, CONNECT_STREAM | GZIP) + frame(
        M.StreamingInputCallRequest(payload=M.Payload(body=b"abc")), True),
    "connect_json_unary": sel(UNARY, CONNECT_JSON | TIMEOUT) +
    b'{"responseSize": 4, "payload": {"body": "AAE="}, "responseStatus": null}',
    "connect_json_unary_bad": sel(UNARY, CONNECT_JSON) + b'{"responseSize": "x"',
    "connect_json_gzip": sel(UNARY, CONNECT_JSON | GZIP) + gzip.compress(b'{"responseSize": 2}'),
    "health": sel(HEALTH) + frame(hpb.HealthCheckRequest(service="grpc.testing.TestService")),
}

out = os.path.join(HERE, "corpus", "grpc")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
