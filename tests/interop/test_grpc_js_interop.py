"""The gRPC interop cases with @grpc/grpc-js (npm, pinned) as the client and examples/interop
(grpc.testing.TestService on switchboard) as the server.

tests/interop/node/grpc_interop.mjs runs every case once, against one server, and prints one
JSON line per case; each case here asserts its own line, so a failure names the case and
carries the client's assertion message. The server is stopped and checked at the end of the
module: exit code 0, no sanitizer report.
"""

import json
import os
import subprocess

import pytest

from conftest import Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "interop", "node", "grpc_interop.mjs")

CASES = ["empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
         "client_streaming", "client_compressed_streaming", "server_streaming",
         "server_compressed_streaming", "ping_pong", "empty_stream",
         "timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response",
         "custom_metadata", "status_code_and_message", "special_status_message",
         "unimplemented_method", "unimplemented_service",
         # beyond the description's list: client compression with "deflate" instead of gzip
         "client_compressed_deflate"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    assert os.path.isdir(os.path.join(ROOT, "node_modules", "@grpc", "grpc-js")), \
        "run scripts/node-deps.sh (make test does)"
    srv = Server("interop", [], tmp_path_factory.mktemp("grpc-js"), "interop").start()
    try:
        p = subprocess.run(["node", SCRIPT, f"127.0.0.1:{srv.port}", *CASES],
                           capture_output=True, text=True, timeout=240, cwd=ROOT)
        by_case = {}
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                by_case[r["case"]] = r
        yield {"cases": by_case, "stderr": p.stderr, "exit": p.returncode}
    finally:
        srv.check_clean()


@pytest.mark.parametrize("case", CASES)
def test_case(results, case):
    r = results["cases"].get(case)
    assert r is not None, f"no result for {case} (exit {results['exit']})\n{results['stderr']}"
    assert r["ok"], r.get("error")


def test_every_case_reported(results):
    assert sorted(results["cases"]) == sorted(CASES)
    assert results["exit"] == 0, results["stderr"]
