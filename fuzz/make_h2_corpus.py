#!/usr/bin/env python3
"""Writes the seed corpus of h2_fuzz: HTTP/2 client frame sequences, one file per seed.

    /usr/bin/python3 fuzz/make_h2_corpus.py [outdir]     (default: fuzz/corpus/h2 beside this)

The files do NOT start with the client connection preface: h2_fuzz adds it to every input, so
the fuzzer never spends mutations on it. The outputs are committed; re-run this script only to
change the seeds (it is deterministic, and rewrites every file it knows).

Frame layout (RFC 9113 section 4.1), 9-byte header then payload:

    +-----------------------------------------------+
    |                 Length (24)                   |
    +---------------+---------------+---------------+
    |   Type (8)    |   Flags (8)   |
    +-+-------------+---------------+-------------------------------+
    |R|                 Stream Identifier (31)                      |
    +=+=============================================================+
    |                   Frame Payload (Length bytes)              ...

Header blocks use HPACK (RFC 7541) static-table indexes where possible, so seeds stay tiny and
the fuzzer quickly reaches the request path rather than the decoder's error paths only.
"""
import os
import struct
import sys

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# SETTINGS identifiers (section 6.5.2).
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

# Error codes (section 7).
NO_ERROR, PROTOCOL_ERROR, CANCEL = 0x0, 0x1, 0x8


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment & 0x7FFFFFFF))


def rst_stream(stream, code):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping(data=b"12345678", ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def goaway(last_stream, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream, code) + debug)


# ---- HPACK ----

def hpack_int(value, prefix_bits, first_byte_flags):
    """Integer representation of RFC 7541 section 5.1."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    """String literal without Huffman coding."""
    return hpack_int(len(s), 7, 0x00) + s


def indexed(i):
    """Indexed header field (section 6.1)."""
    return hpack_int(i, 7, 0x80)


def literal_indexed_name(name_index, value, incremental=False):
    """Literal with indexed name: with incremental indexing (6.2.1) or without (6.2.2)."""
    if incremental:
        return hpack_int(name_index, 6, 0x40) + hpack_str(value)
    return hpack_int(name_index, 4, 0x00) + hpack_str(value)


def literal_new_name(name, value):
    """Literal without indexing, new name (section 6.2.2)."""
    return b"\x00" + hpack_str(name) + hpack_str(value)


# Static table indexes (RFC 7541 appendix A).
METHOD_GET, METHOD_POST, PATH_ROOT, SCHEME_HTTP = 2, 3, 4, 6
NAME_AUTHORITY, NAME_PATH, NAME_CONTENT_TYPE, NAME_CONTENT_LENGTH = 1, 4, 31, 28


def request(method_index=METHOD_GET, path=None, extra=b"", authority=b"localhost"):
    block = indexed(method_index) + indexed(SCHEME_HTTP)
    block += indexed(PATH_ROOT) if path is None else literal_indexed_name(NAME_PATH, path)
    block += literal_indexed_name(NAME_AUTHORITY, authority, incremental=True)
    return block + extra


GET_ROOT = request()
POST_ECHO = request(METHOD_POST, b"/echo",
                    literal_indexed_name(NAME_CONTENT_TYPE, b"text/plain"))


def headers(stream, block, flags=END_HEADERS | END_STREAM):
    return frame(HEADERS, flags, stream, block)


def data(stream, payload, flags=0):
    return frame(DATA, flags, stream, payload)


# Huffman-coded "www.example.com" from RFC 7541 appendix C.4.1.
HUFFMAN_AUTHORITY = bytes([0x41, 0x8C]) + bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")

SEEDS = {
    "get": settings() + headers(1, GET_ROOT),
    "settings_params_ack": settings((HEADER_TABLE_SIZE, 4096), (ENABLE_PUSH, 0),
                                    (MAX_CONCURRENT_STREAMS, 100),
                                    (INITIAL_WINDOW_SIZE, 65535), (MAX_FRAME_SIZE, 16384),
                                    (MAX_HEADER_LIST_SIZE, 8192))
    + settings(ack=True) + headers(1, GET_ROOT),
    "post_data": settings() + headers(1, POST_ECHO, END_HEADERS)
    + data(1, b"hello ") + data(1, b"world", END_STREAM),
    "post_trailers": settings() + headers(1, POST_ECHO, END_HEADERS) + data(1, b"abc")
    + headers(1, literal_new_name(b"x-checksum", b"abc123")),
    # A DATA chunk starting with 'P' makes the harness's handler pause the body (fuzz_conn.h).
    "post_pause_body": settings() + headers(1, POST_ECHO, END_HEADERS) + data(1, b"Pause me")
    + data(1, b"more") + data(1, b"Ptoo", END_STREAM),
    "post_content_length": settings() + headers(
        1, request(METHOD_POST, b"/echo", literal_indexed_name(NAME_CONTENT_LENGTH, b"3")),
        END_HEADERS) + data(1, b"xyz", END_STREAM),
    "window_update": settings() + window_update(0, 1 << 20)
    + headers(1, request(path=b"/stream?chunks=4&size=30000")) + window_update(1, 65535),
    "ping": settings() + ping() + ping(b"abcdefgh", ack=True),
    "rst_stream": settings() + headers(1, POST_ECHO, END_HEADERS) + data(1, b"partial")
    + rst_stream(1, CANCEL),
    "goaway": settings() + headers(1, GET_ROOT) + goaway(1, NO_ERROR, b"bye"),
    "continuation": settings() + headers(1, GET_ROOT[:3], END_STREAM)
    + frame(CONTINUATION, END_HEADERS, 1, GET_ROOT[3:]),
    # The first request adds :authority to the dynamic table (index 62); the next reuse it.
    "multi_streams": settings() + headers(1, GET_ROOT)
    + headers(3, indexed(METHOD_GET) + indexed(SCHEME_HTTP) + indexed(PATH_ROOT) + indexed(62))
    + headers(5, POST_ECHO, END_HEADERS) + data(5, b"five", END_STREAM),
    # PADDED + PRIORITY: pad length 4, exclusive dependency on 0, weight 16, then padding.
    "padded_priority": settings() + frame(
        HEADERS, PADDED | PRIORITY_FLAG | END_HEADERS | END_STREAM, 1,
        bytes([4]) + struct.pack(">IB", 0x80000000, 15) + GET_ROOT + b"\0" * 4)
    + frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 200)),
    # Dynamic table size update to 0 first, then a Huffman-coded authority.
    "hpack_huffman_resize": settings() + headers(
        1, b"\x20" + indexed(METHOD_GET) + indexed(SCHEME_HTTP) + indexed(PATH_ROOT)
        + HUFFMAN_AUTHORITY),
    "headers_many": settings() + headers(1, GET_ROOT + b"".join(
        literal_new_name(b"x-h%02d" % i, b"v" * 40) for i in range(40))),
    "data_large": settings((INITIAL_WINDOW_SIZE, 1 << 20)) + window_update(0, 1 << 20)
    + headers(1, POST_ECHO, END_HEADERS) + data(1, b"d" * 16384) + data(1, b"e" * 4000)
    + data(1, b"", END_STREAM),
    "ping_flood": settings() + b"".join(ping(struct.pack(">Q", i)) for i in range(40)),
    "rst_flood": settings() + b"".join(
        headers(s, GET_ROOT, END_HEADERS) + rst_stream(s, CANCEL) for s in range(1, 60, 2)),
    "bad_data_on_stream0": settings() + data(0, b"nope", END_STREAM),
    "bad_even_stream": settings() + headers(2, GET_ROOT),
    "bad_window_overflow": settings() + window_update(0, 0x7FFFFFFF)
    + window_update(0, 0x7FFFFFFF),
    "bad_settings_window": settings((INITIAL_WINDOW_SIZE, 0x80000000)),
    "bad_push_promise": settings() + frame(PUSH_PROMISE, END_HEADERS, 1,
                                           struct.pack(">I", 2) + GET_ROOT),
    "bad_missing_pseudo": settings() + headers(1, indexed(METHOD_GET)),
    "unknown_frame_type": settings() + frame(0xFA, 0xFF, 1, b"extension")
    + headers(1, GET_ROOT),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "h2")
    os.makedirs(out, exist_ok=True)
    for name, blob in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print("wrote %d seeds to %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
