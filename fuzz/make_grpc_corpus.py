#!/usr/bin/env python3
"""Writes the seed corpus of grpc_fuzz (fuzz/corpus/grpc/): one selector byte (method, gzip,
timeout, DATA frame size, gRPC-Web text; see grpc_fuzz.c) and a gRPC request body of
length-prefixed messages, encoded with stubs generated from the same .proto files the target
serves.

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

UNARY, OUT, IN, FULL, HALF, REFL, REFL_ALPHA, HEALTH = range(8)
GZIP, TIMEOUT, WEB_TEXT = 8, 16, 128


def frame(msg, compress=False):
    b = msg.SerializeToString()
    if compress:
        b = gzip.compress(b)
    return struct.pack(">BI", 1 if compress else 0, len(b)) + b


def sel(method, flags=0, size=3):
    return bytes([method | flags | (size << 5)])


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
    "unary_gzip_cut": sel(UNARY, GZIP, 0) + frame(
        M.SimpleRequest(response_size=100, response_compressed=M.BoolValue(value=True)), True),
    "unary_status": sel(UNARY, TIMEOUT, 1) + frame(
        M.SimpleRequest(response_status=M.EchoStatus(code=2, message="\t\nbad \u263a"))),
    "unary_two_messages": sel(UNARY) + frame(M.SimpleRequest()) * 2,
    "unary_truncated": sel(UNARY) + frame(M.SimpleRequest(response_size=5))[:-1],
    "unary_bad_flag": sel(UNARY) + b"\x07\x00\x00\x00\x00",
    "unary_compressed_no_encoding": sel(UNARY) + frame(M.SimpleRequest(), True),
    "server_stream": sel(OUT, 0, 1) + frame(out_req(1, 2, 3, 4000)),
    "client_stream": sel(IN, GZIP, 0) + b"".join(
        frame(M.StreamingInputCallRequest(payload=M.Payload(body=b"x" * n)), n % 2 == 0)
        for n in (1, 2, 3, 300)),
    "full_duplex": sel(FULL, 0, 2) + frame(out_req(5)) + frame(out_req(6, 7)) +
    frame(out_req(status=(5, "not found"))),
    "half_duplex": sel(HALF, TIMEOUT, 2) + frame(out_req(8)) + frame(out_req()),
    "empty_stream": sel(FULL),
    "reflection_list": sel(REFL) + frame(r1.ServerReflectionRequest(list_services="")),
    "reflection_symbols": sel(REFL, 0, 2) + b"".join(
        frame(r1.ServerReflectionRequest(file_containing_symbol=s))
        for s in ("grpc.testing.TestService.UnaryCall", "grpc.testing.Payload",
                  ".grpc.health.v1.HealthCheckResponse.ServingStatus", "no.Such")),
    "reflection_alpha_file": sel(REFL_ALPHA) + frame(
        r1.ServerReflectionRequest(file_by_filename="test.proto")) + frame(
        r1.ServerReflectionRequest(all_extension_numbers_of_type="x")),
    "web_text_unary": sel(UNARY, WEB_TEXT, 1) + base64.b64encode(
        frame(M.SimpleRequest(response_size=3))[:4]) + base64.b64encode(
        frame(M.SimpleRequest(response_size=3))[4:]),
    "web_text_server_stream": sel(OUT, WEB_TEXT) + base64.b64encode(frame(out_req(1, 2))),
    "health": sel(HEALTH) + frame(hpb.HealthCheckRequest(service="grpc.testing.TestService")),
}

out = os.path.join(HERE, "corpus", "grpc")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
