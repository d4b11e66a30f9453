"""The SQS flows through @aws-sdk/client-sqs v3 (AWS JSON 1.0): tests/interop/node/
sqs_client.mjs runs them against a real switchboard and reports {checks, failures}."""

import json
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "interop", "node", "sqs_client.mjs")


def test_aws_sdk_v3_sqs(sbserver):
    sdk = os.path.join(ROOT, "node_modules", "@aws-sdk", "client-sqs")
    assert os.path.isdir(sdk), f"{sdk} missing: run scripts/node-deps.sh (make test does)"
    env = dict(os.environ, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE="1",
               NODE_NO_WARNINGS="1")
    p = subprocess.run(["node", SCRIPT, f"http://127.0.0.1:{sbserver.port}"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, p.stdout + p.stderr
    out = json.loads(lines[-1])
    assert p.returncode == 0 and not out["failures"], json.dumps(out, indent=1) + p.stderr
    assert out["checks"] >= 30
