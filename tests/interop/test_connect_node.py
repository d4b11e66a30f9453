"""The Connect protocol with @connectrpc/connect-node (npm, pinned) as the client: the items
example (unary POST, unary GET for side-effect-free methods, server streaming) over HTTP/1.1
and HTTP/2, and the interop service (metadata, statuses, server, client and bidirectional
streaming, deadline) over HTTP/2, each with the JSON and the binary codec.

The client gets its schemas from FileDescriptorSets protoc writes here from the same .proto
files the servers were built from. tests/interop/node/connect_client.mjs prints one JSON line
per check group; each group is its own case here. (connect-node 2.2.0 declares node >= 22; it
runs on Debian's node 20, which these checks prove for what they cover.)
"""

import json
import os
import subprocess

import pytest

from conftest import Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "interop", "node", "connect_client.mjs")

COMBOS = ["http1.1/json", "http1.1/proto", "http2/json", "http2/proto"]
CHECKS = [f"items {what} {c}" for c in COMBOS
          for what in ("unary", "GET (side-effect free)", "server streaming")]
CHECKS += [f"interop {what} {c}" for c in ("http2/json", "http2/proto")
           for what in ("unary with metadata", "server streaming", "client streaming",
                        "bidi ping-pong", "bidi error and deadline")]


def descriptor_set(out, includes, proto):
    subprocess.run(["protoc", f"--descriptor_set_out={out}", "--include_imports",
                    *[f"-I{i}" for i in includes], proto],
                   check=True, capture_output=True, timeout=60)
    return str(out)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    assert os.path.isdir(os.path.join(ROOT, "node_modules", "@connectrpc", "connect-node")), \
        "run scripts/node-deps.sh (make test does)"
    work = tmp_path_factory.mktemp("connect-node")
    items_set = descriptor_set(work / "items.binpb", [f"{ROOT}/examples/items", f"{ROOT}/proto",
                                                      "/usr/include"], "items.proto")
    interop_set = descriptor_set(work / "interop.binpb", [f"{ROOT}/examples/interop"],
                                 "test.proto")
    items = Server("items", [], work, "items").start()
    interop = Server("interop", [], work, "interop").start()
    try:
        p = subprocess.run(["node", SCRIPT, f"http://127.0.0.1:{items.port}", items_set,
                            f"http://127.0.0.1:{interop.port}", interop_set],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
        by_check = {}
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                by_check[r["check"]] = r
        yield {"checks": by_check, "stderr": p.stderr, "exit": p.returncode}
    finally:
        items.check_clean()
        interop.check_clean()


@pytest.mark.parametrize("check", CHECKS)
def test_check(results, check):
    r = results["checks"].get(check)
    assert r is not None, f"no result for {check} (exit {results['exit']})\n{results['stderr']}"
    assert r["ok"], r.get("error")


def test_every_check_reported(results):
    assert sorted(results["checks"]) == sorted(CHECKS)
    assert results["exit"] == 0, results["stderr"]
