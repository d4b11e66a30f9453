"""/docs over HTTP, driven with curl: the page, the allow-listed Swagger UI assets (byte for
byte the files of the pinned swagger-ui-dist package), their Content-Type and caching headers,
ETag/304, HEAD, HTTP/2, parallel downloads, 404 for every other name (path traversal
included), 405 for other methods, the --docs-dir override, and a clear 503 when the assets
are missing while the rest of the server keeps working. The browser test is
test_docs_browser.py."""

import json
import os

import pytest

from helpers import curl, run, split_head_body

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIST = os.path.join(ROOT, "node_modules", "swagger-ui-dist")
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "oauth2-redirect.html": "text/html; charset=utf-8",
    "oauth2-redirect.js": "text/javascript; charset=utf-8",
}


def fetch(port, path, *extra):
    """(status, headers, body bytes) of one request; curl --path-as-is keeps ../ intact."""
    r = curl("-i", "--path-as-is", *extra, f"http://127.0.0.1:{port}{path}")
    blocks, body = split_head_body(r.stdout)
    head = blocks[-1]
    headers = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(head.split()[1]), headers, body


@pytest.fixture
def items(server_factory):
    assert os.path.isfile(os.path.join(DIST, "swagger-ui-bundle.js")), \
        "run scripts/node-deps.sh (make test does)"
    return server_factory(kind="items")


def test_page_points_swagger_ui_at_openapi_json(items):
    for path in ("/docs", "/docs/", "/docs/index.html", "/docs?x=1"):
        st, h, body = fetch(items.port, path)
        assert st == 200, (path, st)
        assert h["content-type"] == "text/html; charset=utf-8"
        assert h["cache-control"] == "no-cache" and h["etag"].startswith('"')
        assert h["x-content-type-options"] == "nosniff"
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp, csp
        page = body.decode()
        assert '<script src="/docs/swagger-ui-bundle.js">' in page
        assert '<script src="/docs/switchboard-init.js">' in page
        assert 'href="/docs/swagger-ui.css"' in page
        assert "<script>" not in page, "an inline script would need 'unsafe-inline'"
    st, h, init = fetch(items.port, "/docs/switchboard-init.js")
    assert st == 200 and h["content-type"] == "text/javascript; charset=utf-8"
    init = init.decode()
    assert "url: '/openapi.json'" in init and "validatorUrl: null" in init, init
    # The document the page points at is there.
    st, h, doc = fetch(items.port, "/openapi.json")
    assert st == 200 and json.loads(doc)["openapi"].startswith("3.1")


def test_assets_are_the_package_files(items):
    for name, ctype in ASSETS.items():
        st, h, body = fetch(items.port, f"/docs/{name}")
        with open(os.path.join(DIST, name), "rb") as f:
            want = f.read()
        assert st == 200, (name, st)
        assert h["content-type"] == ctype, (name, h)
        assert int(h["content-length"]) == len(want)
        assert body == want, f"{name}: {len(body)} bytes differ from the package's {len(want)}"
        assert h["cache-control"] == "public, max-age=86400", (name, h)
        assert h["x-content-type-options"] == "nosniff"
        assert ("content-security-policy" in h) == ctype.startswith("text/html"), (name, h)


def test_etag_304_and_head(items):
    st, h, body = fetch(items.port, "/docs/swagger-ui.css")
    etag = h["etag"]
    st, h2, body2 = fetch(items.port, "/docs/swagger-ui.css", "-H", f"if-none-match: {etag}")
    assert st == 304 and body2 == b"" and h2["etag"] == etag
    st, h3, _ = fetch(items.port, "/docs", "-H", 'if-none-match: "0000000000000000"')
    assert st == 200
    # HEAD: the same headers, no body.
    st, h4, body4 = fetch(items.port, "/docs/swagger-ui-bundle.js", "-I")
    assert st == 200 and body4 == b""
    assert h4["content-length"] == str(os.path.getsize(os.path.join(DIST, "swagger-ui-bundle.js")))


def test_http2_and_parallel_downloads(items, tmp_path):
    bundle = os.path.join(DIST, "swagger-ui-bundle.js")
    with open(bundle, "rb") as f:
        want = f.read()
    url = f"http://127.0.0.1:{items.port}/docs/swagger-ui-bundle.js"
    # HTTP/2: one download byte for byte, then 12 of the 1.7 MB bundle, 6 streams at a time on
    # each of 2 connections, through flow control and the streaming pump. (h2load, not curl
    # -Z: curl 7.88 fails its own second multiplexed stream on h2c prior knowledge, /healthz
    # included.)
    one = tmp_path / "bundle-h2.js"
    curl("--http2-prior-knowledge", "-o", str(one), url, timeout=30)
    assert one.read_bytes() == want
    p = run(["h2load", "-n", "12", "-c", "2", "-m", "6", url], timeout=60, check_rc=0)
    assert "12 succeeded, 0 failed, 0 errored" in p.out, p.out
    assert f"({12 * len(want)}) data" in p.out, p.out
    # HTTP/1.1 on parallel connections.
    outs = []
    args = ["-Z"]
    for i in range(6):
        out = tmp_path / f"bundle-h1-{i}.js"
        outs.append(out)
        args += ["-o", str(out), url]
    curl(*args, timeout=60)
    for out in outs:
        assert out.read_bytes() == want, f"{out.name}: {out.stat().st_size} bytes"


@pytest.mark.parametrize("path", [
    "/docs/nope.js",
    "/docs/../CMakeLists.txt",
    "/docs/../../../../etc/passwd",
    "/docs/%2e%2e/package.json",
    "/docs/..%2fpackage.json",
    "/docs/swagger-ui.css/",
    "/docs//swagger-ui.css",
    "/docs/./swagger-ui.css",
    "/docs/Swagger-UI.css",
    "/docs/swagger-ui.css.map",
    "/docs/package.json",
    "/docs/LICENSE",
    "/docs/swagger-ui-es-bundle.js",
    "/docs/index.html/",
])
def test_other_names_are_404(items, path):
    st, h, body = fetch(items.port, path)
    if path.startswith("/docs/../"):
        # curl sends it as is; a server that normalised it would answer the REST 404 instead.
        assert st == 404
        return
    assert st == 404, (path, st, body[:200])
    err = json.loads(body)
    assert err["code"] == 5 and err["details"] == [], err
    assert h["content-type"] == "application/json"


def test_other_methods_405_and_neighbours_untouched(items):
    st, h, body = fetch(items.port, "/docs", "-X", "POST", "-d", "x")
    assert st == 405 and h["allow"] == "GET, HEAD", (st, h)
    assert json.loads(body)["code"] == 12
    # Only /docs and /docs/... belong to the docs handler.
    st, _, body = fetch(items.port, "/docsx")
    assert st == 404 and "no route" in json.loads(body)["message"]


def test_missing_assets_answer_503_and_the_server_keeps_working(server_factory, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    srv = server_factory("--docs-dir", str(empty), kind="items")
    for path in ("/docs", "/docs/swagger-ui.css", "/docs/switchboard-init.js"):
        st, h, body = fetch(srv.port, path)
        assert st == 503, (path, st)
        err = json.loads(body)
        assert err["code"] == 14 and "swagger-ui-dist" in err["message"], err
        assert str(empty) not in err["message"], "the client must not learn server paths"
    # The unknown-name check comes first: still a 404.
    assert fetch(srv.port, "/docs/nope")[0] == 404
    # Everything else works.
    st, _, body = fetch(srv.port, "/items", "-X", "POST", "-H", "content-type: application/json",
                        "-d", '{"name":"a","price":1}')
    assert st == 201, body
    assert fetch(srv.port, "/openapi.json")[0] == 200
    assert fetch(srv.port, "/healthz")[0] == 200
    # The log says where it looked, once.
    log = srv.log_text()
    assert log.count("event=docs_unavailable") == 1, srv.tail()
    assert f'dir="{empty}"' in log and "file=swagger-ui.css" in log, srv.tail()


def test_docs_dir_override(server_factory, tmp_path):
    d = tmp_path / "ui"
    d.mkdir()
    (d / "swagger-ui.css").write_bytes(b"/* css */\n")
    (d / "swagger-ui-bundle.js").write_bytes(b"// bundle\n" * 1000)
    srv = server_factory("--docs-dir", str(d), kind="items")
    st, h, body = fetch(srv.port, "/docs/swagger-ui-bundle.js")
    assert st == 200 and body == b"// bundle\n" * 1000
    assert fetch(srv.port, "/docs/swagger-ui.css")[2] == b"/* css */\n"
    # Optional files the directory lacks are 404; the page itself is served.
    assert fetch(srv.port, "/docs/favicon-16x16.png")[0] == 404
    assert fetch(srv.port, "/docs")[0] == 200
    assert f'event=docs_loaded dir="{d}"' in srv.log_text()


def test_switchboard_serve_has_docs(server_factory):
    """`make run` starts `switchboard serve`: /docs works there too, from the build tree's
    node_modules (the default for a binary inside its build tree)."""
    srv = server_factory(kind="switchboard")
    st, h, _ = fetch(srv.port, "/docs")
    assert st == 200 and h["content-type"].startswith("text/html")
    st, h, body = fetch(srv.port, "/docs/swagger-ui.css")
    with open(os.path.join(DIST, "swagger-ui.css"), "rb") as f:
        assert st == 200 and body == f.read()
    assert f'event=docs_loaded dir="{DIST}"' in srv.log_text()
