"""gRPC-Web from a real browser: a page in Debian's headless Chromium (playwright-core) calls the
items example with @connectrpc/connect-web's gRPC-Web transport, cross-origin, no proxy.

At test time: protoc runs @bufbuild/protoc-gen-es on examples/items/items.proto (and the
option protos it imports) into the test's directory, esbuild bundles
tests/interop/node/grpcweb_page.mjs with those schemas into one script, and a small HTTP server
of the test's own serves the page from another origin than switchboard's. The page creates
two items, gets one (unary), watches them (server streaming) and asks for an absent one
(NOT_FOUND in the trailers); the test asserts what it saw.
"""

import functools
import http.server
import json
import os
import subprocess
import threading

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_DIR = os.path.join(ROOT, "tests", "interop", "node")
NODE_MODULES = os.path.join(ROOT, "node_modules")
CHROMIUM = "/usr/bin/chromium"
# items.proto and the protos it imports that are not well-known types (protoc-gen-es
# generates an import for each; google/protobuf/* come with @bufbuild/protobuf).
PROTOS = ["items.proto", "google/api/annotations.proto", "google/api/http.proto",
          "switchboard/options.proto", "switchboard/validate.proto"]


def tool(name):
    path = os.path.join(NODE_MODULES, ".bin", name)
    assert os.access(path, os.X_OK), f"{path} missing: run scripts/node-deps.sh (make test does)"
    return path


def run(cmd, cwd, env=None, timeout=120):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(cwd),
                       env=env)
    assert p.returncode == 0, f"{cmd[0]} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


@pytest.fixture
def page_dir(tmp_path):
    """The page and its bundled script, in a directory of their own."""
    gen = tmp_path / "gen"
    site = tmp_path / "site"
    gen.mkdir()
    site.mkdir()
    run(["protoc", f"--plugin=protoc-gen-es={tool('protoc-gen-es')}", f"--es_out={gen}",
         "--es_opt=target=js", f"-I{ROOT}/examples/items", f"-I{ROOT}/proto", "-I/usr/include",
         *PROTOS], tmp_path)
    assert (gen / "items_pb.js").exists()
    # The generated files import @bufbuild/protobuf from outside the repository: NODE_PATH lets
    # esbuild find it in the repository's node_modules.
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    run([tool("esbuild"), os.path.join(NODE_DIR, "grpcweb_page.mjs"), "--bundle",
         "--format=esm", "--target=es2022", f"--alias:items-pb={gen / 'items_pb.js'}",
         f"--outfile={site / 'page.js'}", "--log-level=warning"], tmp_path, env=env)
    (site / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><title>gRPC-Web</title>'
        '<link rel="icon" href="data:,">'  # no favicon request (a 404 in the console)
        '<script type="module" src="page.js"></script>\n')
    return site


@pytest.fixture
def page_server(page_dir):
    """Serves page_dir on its own loopback port: another origin than switchboard's."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(page_dir)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_connect_web_grpc_web_transport(items, page_server, tmp_path):
    assert os.access(CHROMIUM, os.X_OK), "chromium missing: scripts/deps.sh test installs it"
    server = f"http://127.0.0.1:{items.port}"
    assert page_server != server
    url = f"{page_server}/index.html?server={server}"
    # HOME in the test's tmp dir: Chromium writes its profile and crash dumps under it.
    env = dict(os.environ, HOME=str(tmp_path))
    p = subprocess.run(["node", os.path.join(NODE_DIR, "grpcweb_browser.mjs"), url],
                       capture_output=True, text=True, timeout=90, cwd=str(tmp_path), env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    out = json.loads(lines[-1])
    assert "error" not in out and p.returncode == 0, out.get("error", p.stderr)
    assert out["pageStatus"] == 200
    res = out["result"]
    assert "failure" not in res, res["failure"]
    assert res["origin"] == page_server and res["server"] == server

    lamp = {"id": 1, "name": "lamp", "price": 12.5}
    desk = {"id": 2, "name": "desk \u263a", "price": 99}
    assert res["created"] == [lamp, desk]
    assert res["item"] == desk
    assert res["headers"]["getItem"] == "application/grpc-web+proto"
    assert res["events"] == [{"id": 1, "name": "lamp", "deleted": False},
                             {"id": 2, "name": "desk \u263a", "deleted": False}]
    assert res["notFound"] == {"code": "NotFound", "message": "item 4000000 not found"}

    # Every call went from the page's origin to switchboard's (the preflights themselves are
    # the browser's own and not listed).
    calls = [r for r in out["requests"] if r.startswith("POST ")]
    assert calls == [f"POST {server}/items.v1.ItemService/{m}" for m in
                     ("CreateItem", "CreateItem", "GetItem", "WatchItems", "GetItem")], calls
    assert out["pageErrors"] == [], out["pageErrors"]
    # The NOT_FOUND answer is not a network error: the console stays clean.
    assert out["consoleErrors"] == [], out["consoleErrors"]
