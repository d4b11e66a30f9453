"""/docs in a real browser: Debian's headless Chromium, driven by playwright-core (npm,
pinned to the release built for the same Chromium major), opens Swagger UI on the items
example, sees the ItemService operations, runs GetItem with "Try it out" / "Execute" on an
item created beforehand, and sees the 200 response and the item in the page. The page must
load with no script error, no Content-Security-Policy violation, and no request leaving the
server's origin. A full-page screenshot is kept: $SB_ARTIFACTS/docs.png (CTest sets it to
<build>/tests/artifacts), and its path is printed.
"""

import json
import os
import subprocess

import pytest

from helpers import curl

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "interop", "node", "docs_ui.mjs")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


def test_swagger_ui_executes_get_item(items, tmp_path, capsys):
    assert os.access(CHROMIUM, os.X_OK), "chromium missing: scripts/deps.sh test installs it"
    assert os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")), \
        "run scripts/node-deps.sh (make test does)"
    base = f"http://127.0.0.1:{items.port}"
    r = curl("-f", "-X", "POST", "-H", "content-type: application/json",
             "--data-binary", '{"name":"lamp","price":12.5}', f"{base}/items")
    created = json.loads(r.out)
    assert created["id"] >= 1, created

    artifacts = os.environ.get("SB_ARTIFACTS") or str(tmp_path)
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "docs.png")
    if os.path.exists(shot):
        os.remove(shot)
    # HOME in the test's tmp dir: Chromium writes its profile and crash dumps under it.
    env = dict(os.environ, HOME=str(tmp_path))
    p = subprocess.run(["node", SCRIPT, base, str(created["id"]), shot], capture_output=True,
                       text=True, timeout=90, cwd=str(tmp_path), env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    res = json.loads(lines[-1])
    with capsys.disabled():  # shown by `ctest -V` and kept in LastTest.log, pass or fail
        print(f"\nscreenshot: {shot}")
    assert "error" not in res and p.returncode == 0, res.get("error", p.stderr)

    assert res["pageStatus"] == 200
    assert res["title"].startswith("items.v1"), res["title"]
    ops = set(res["operations"])
    for op in ("GET /items/{id}", "POST /items", "GET /items", "PATCH /items/{id}",
               "DELETE /items/{id}", "GET /items:watch"):
        assert op in ops, (op, res["operations"])

    assert res["status"] == "200", res
    assert json.loads(res["body"]) == created, res["body"]
    assert res["requestUrl"] == f"{base}/items/{created['id']}", res["requestUrl"]

    assert res["pageErrors"] == [] and res["consoleErrors"] == [], res
    assert res["cspViolations"] == [], res["cspViolations"]
    foreign = [u for u in res["requests"] if not u.startswith(base + "/")]
    assert foreign == [], foreign
    assert f"{base}/openapi.json" in res["requests"]

    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG"
    assert os.path.getsize(shot) > 10000
