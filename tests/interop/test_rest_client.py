"""A client generated from the served /openapi.json calls the items example.

openapi-typescript (npm, pinned) turns the document the server serves into TypeScript types;
tests/interop/node/rest_client.mjs makes typed calls with openapi-fetch; `tsc --noEmit`
(strict, checkJs) type-checks it against those types, and Node then runs it against the same
server: create an item (201), get it (200), list it, and an absent item's 404 error body.
"""

import json
import os
import subprocess

import pytest

from helpers import curl

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_DIR = os.path.join(ROOT, "tests", "interop", "node")
BIN = os.path.join(ROOT, "node_modules", ".bin")


def tool(name):
    path = os.path.join(BIN, name)
    assert os.access(path, os.X_OK), f"{path} missing: run scripts/node-deps.sh (make test does)"
    return path


def run(cmd, cwd, timeout=120):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(cwd))
    return p


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


def test_generated_typescript_client(items, tmp_path):
    base = f"http://127.0.0.1:{items.port}"
    doc = tmp_path / "openapi.json"
    curl("-f", "-o", str(doc), f"{base}/openapi.json")

    types = tmp_path / "items-openapi.d.ts"
    p = run([tool("openapi-typescript"), str(doc), "-o", str(types)], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    text = types.read_text()
    assert '"/items/{id}"' in text and '"items.v1.Item"' in text, text[:2000]

    # The client lives in the repository; its generated types module lives here. Type roots
    # and packages resolve from the repository's node_modules.
    tsconfig = {
        "compilerOptions": {
            "strict": True, "allowJs": True, "checkJs": True, "noEmit": True,
            "module": "esnext", "moduleResolution": "bundler", "target": "es2022",
            "lib": ["es2022", "dom"], "types": ["node"],
            "typeRoots": [os.path.join(ROOT, "node_modules", "@types")],
            "skipLibCheck": True,
            "paths": {"items-openapi": ["./items-openapi.d.ts"]},
        },
        "files": [os.path.join(NODE_DIR, "rest_client.mjs")],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2))
    p = run([tool("tsc"), "--noEmit", "-p", str(tmp_path / "tsconfig.json")], tmp_path)
    assert p.returncode == 0, "tsc --noEmit failed:\n" + p.stdout + p.stderr

    p = run(["node", os.path.join(NODE_DIR, "rest_client.mjs"), base], tmp_path, timeout=60)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, p.stdout + p.stderr
    report = json.loads(lines[-1])
    assert report["failures"] == [] and p.returncode == 0, report
    assert report["checks"] >= 12, report
