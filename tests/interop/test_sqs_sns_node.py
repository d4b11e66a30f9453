"""The SQS flows through @aws-sdk/client-sqs v3 (AWS JSON 1.0) and the SNS fan-out through
@aws-sdk/client-sns v3 (Query): tests/interop/node/sqs_client.mjs and sns_client.mjs run them against a real switchboard and reports {checks, failures}. `tsc
--noEmit` (strict, checkJs) first checks the script against the SDK's own types, so a call
shape that drifts from the SDK fails here rather than at run time."""

import json
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "interop", "node", "sqs_client.mjs")
SNS_SCRIPT = os.path.join(ROOT, "tests", "interop", "node", "sns_client.mjs")


def test_aws_sdk_v3_sqs(server_factory, tmp_path):
    # With credentials configured, so every request of the SDK also passes SigV4 verification.
    sbserver = server_factory("--sqs-credentials", "AKIDEXAMPLE:dummy-secret", kind="switchboard")
    sdk = os.path.join(ROOT, "node_modules", "@aws-sdk", "client-sqs")
    assert os.path.isdir(sdk), f"{sdk} missing: run scripts/node-deps.sh (make test does)"
    tsconfig = {"compilerOptions": {
        "strict": True, "allowJs": True, "checkJs": True, "noEmit": True, "module": "esnext",
        "moduleResolution": "bundler", "target": "es2022", "lib": ["es2022", "dom"],
        "types": ["node"], "typeRoots": [os.path.join(ROOT, "node_modules", "@types")],
        "skipLibCheck": True, "baseUrl": ROOT,
        "paths": {"*": [os.path.join(ROOT, "node_modules", "*")]}}, "files": [SCRIPT, SNS_SCRIPT]}
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig))
    tsc = os.path.join(ROOT, "node_modules", ".bin", "tsc")
    p = subprocess.run([tsc, "-p", str(tmp_path / "tsconfig.json")], capture_output=True,
                       text=True, timeout=180, cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    env = dict(os.environ, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE="1",
               NODE_NO_WARNINGS="1")
    for script, at_least in ((SCRIPT, 30), (SNS_SCRIPT, 12)):
        p = subprocess.run(["node", script, f"http://127.0.0.1:{sbserver.port}"],
                           capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        assert lines, p.stdout + p.stderr
        out = json.loads(lines[-1])
        assert p.returncode == 0 and not out["failures"], json.dumps(out, indent=1) + p.stderr
        assert out["checks"] >= at_least, script
