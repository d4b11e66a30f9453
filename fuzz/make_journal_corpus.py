#!/usr/bin/python3
"""Writes the seed corpus of journal_fuzz into fuzz/corpus/journal/.

Seeds follow the target's input format: byte 0 even = record area only (the harness adds a
valid header), odd = whole segment file. Records are built exactly as segment.h describes,
with a bitwise CRC-32C written here independently of the C code.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "journal")


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def record(offset, ts, key, value, headers=()):
    hblock = b"".join(struct.pack("<HI", len(n), len(v)) + n + v for n, v in headers)
    length = 32 + len(key) + len(value) + len(hblock)
    lenf = struct.pack("<I", length)
    offf = struct.pack("<Q", offset)
    rest = struct.pack("<qIIIHH", ts, len(key), len(value), len(hblock), len(headers), 0)
    rest += key + value + hblock
    crc = crc32c(offf, crc32c(rest, crc32c(lenf)))
    return lenf + struct.pack("<I", crc) + offf + rest


def header(base, created):
    h = b"SBJSEG\x00\x01" + struct.pack("<QqI", base, created, 0)
    return h + struct.pack("<I", crc32c(h))


def main():
    assert crc32c(b"123456789") == 0xE3069283
    os.makedirs(OUT, exist_ok=True)
    recs = [record(0, 1000, b"k0", b"hello", [(b"type", b"order")]),
            record(1, 999, b"", b"x" * 200),
            record(2, 1500, b"key-2", b"", [(b"a", b""), (b"", b"b")])]
    area = b"".join(recs)
    seeds = {
        "three_records": b"\x00" + area,
        "whole_file": b"\x01" + header(0, 1) + area,
        "torn_tail": b"\x00" + area[:-7],
        "flipped_crc": b"\x00" + recs[0] + recs[1][:5] + bytes([recs[1][5] ^ 1]) + recs[1][6:],
        "bad_header": b"\x01" + header(5, 1) + area,
        "garbage_after": b"\x00" + area + b"\xff" * 40,
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
