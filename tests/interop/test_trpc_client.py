"""A stock @trpc/client v11 calls the items example, typed by the generated AppRouter.

`switchboard gen` writes items.trpc.d.ts from examples/items/items.proto (the same plugin the
CMake helper runs); tests/interop/node/trpc_client.ts imports AppRouter from it, `tsc --noEmit`
(strict) type-checks it, esbuild transpiles it, and Node runs it against the server over every
link: httpLink, httpBatchLink, httpBatchStreamLink (JSONL) and httpSubscriptionLink (SSE).

The type tests then prove the types are not loose: clients that use a renamed field, a wrong
input type or a procedure the contract does not have must FAIL `tsc --noEmit`, each with the
error that names the mistake.
"""

import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_DIR = os.path.join(ROOT, "tests", "interop", "node")
BIN = os.path.join(ROOT, "node_modules", ".bin")
SB_BIN = os.environ.get("SB_BIN", os.path.join(ROOT, "build", "asan", "switchboard"))


def tool(name):
    path = os.path.join(BIN, name)
    assert os.access(path, os.X_OK), f"{path} missing: run scripts/node-deps.sh (make test does)"
    return path


def run(cmd, cwd, timeout=180):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(cwd))


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A TypeScript project: the generated declarations, node_modules, a strict tsconfig."""
    d = tmp_path_factory.mktemp("trpc")
    gen = d / "gen"
    p = run([SB_BIN, "gen", "--out", str(gen), os.path.join(ROOT, "examples", "items",
                                                            "items.proto")], d)
    assert p.returncode == 0, p.stdout + p.stderr
    dts = gen / "items.trpc.d.ts"
    text = dts.read_text()
    assert "export type AppRouter = TRPCBuiltRouter<" in text, text
    assert "getItem: TRPCQueryProcedure<" in text and "createItem: TRPCMutationProcedure<" in text
    assert "watchItems: TRPCSubscriptionProcedure<" in text
    # Packages resolve from the repository's node_modules for the files here too.
    (d / "node_modules").symlink_to(os.path.join(ROOT, "node_modules"))
    return d


def tsc(project, files):
    tsconfig = {
        "compilerOptions": {
            "strict": True, "noEmit": True, "module": "esnext", "moduleResolution": "bundler",
            "target": "es2022", "lib": ["es2022", "dom"], "types": ["node"],
            "typeRoots": [os.path.join(ROOT, "node_modules", "@types")],
            "skipLibCheck": True,
            "paths": {"items-trpc": ["./gen/items.trpc.d.ts"]},
        },
        "files": [str(f) for f in files],
    }
    cfg = project / f"tsconfig-{os.path.basename(str(files[0]))}.json"
    cfg.write_text(json.dumps(tsconfig, indent=2))
    return run([tool("tsc"), "--noEmit", "-p", str(cfg)], project)


def test_trpc_client_every_link(items, project):
    client = os.path.join(NODE_DIR, "trpc_client.ts")
    p = tsc(project, [client])
    assert p.returncode == 0, "tsc --noEmit failed on the client:\n" + p.stdout + p.stderr

    out = project / "trpc_client.mjs"
    p = run([tool("esbuild"), client, "--format=esm", "--platform=node", f"--outfile={out}",
             "--log-level=warning"], project)
    assert p.returncode == 0, p.stdout + p.stderr

    url = f"http://127.0.0.1:{items.port}/trpc"
    # Node 20 has EventSource (httpSubscriptionLink's transport) behind a flag.
    p = run(["node", "--experimental-eventsource", "--no-warnings", str(out), url], project,
            timeout=90)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, p.stdout + p.stderr
    report = json.loads(lines[-1])
    assert report["failures"] == [] and p.returncode == 0, report
    assert report["checks"] >= 29, report


# Each wrong client: what it gets wrong, its body, and the tsc diagnostic that must name it.
WRONG_CLIENTS = {
    "renamed_field": (
        "const item = await trpc.getItem.query({ id: 1 });\n"
        "const title: string | undefined = item.title;\n",
        "Property 'title' does not exist on type",
    ),
    "renamed_input_field": (
        "await trpc.createItem.mutate({ title: 'lamp', price: 1 });\n",
        "'title' does not exist in type",
    ),
    "wrong_input_type": (
        "await trpc.getItem.query({ id: '1' });\n",
        "Type 'string' is not assignable to type 'number'",
    ),
    "no_such_procedure": (
        "await trpc.getItems.query({ id: 1 });\n",
        "Property 'getItems' does not exist",
    ),
    "query_as_mutation": (
        "await trpc.getItem.mutate({ id: 1 });\n",
        "Property 'mutate' does not exist",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_CLIENTS))
def test_trpc_types_reject_wrong_clients(project, case):
    body, diagnostic = WRONG_CLIENTS[case]
    src = project / f"wrong_{case}.ts"
    src.write_text(
        "import { createTRPCClient, httpBatchLink } from '@trpc/client';\n"
        "import type { AppRouter } from 'items-trpc';\n"
        "const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: 'http://x/trpc' })] });\n"
        + body + "export {};\n")
    p = tsc(project, [src])
    assert p.returncode != 0, f"tsc accepted a wrong client ({case}):\n{src.read_text()}"
    assert diagnostic in p.stdout, p.stdout + p.stderr
    # The same client with the mistake fixed type-checks: only the mistake was rejected.
    right = project / f"right_{case}.ts"
    right.write_text(
        "import { createTRPCClient, httpBatchLink } from '@trpc/client';\n"
        "import type { AppRouter } from 'items-trpc';\n"
        "const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: 'http://x/trpc' })] });\n"
        "const item = await trpc.getItem.query({ id: 1 });\n"
        "const name: string | undefined = item.name;\n"
        "await trpc.createItem.mutate({ name: 'lamp', price: 1 });\n"
        "await trpc.getItem.query();\n"
        "console.log(name);\n"
        "export {};\n")
    p = tsc(project, [right])
    assert p.returncode == 0, p.stdout + p.stderr


NAMING_PROTO = """
syntax = "proto3";
package naming.v1;
import "switchboard/options.proto";
message M { int64 big = 1; map<string, M> children = 2; E e = 3; repeated string tags = 4; }
enum E { E_UNSPECIFIED = 0; E_ONE = 1; }
service Alpha {
  rpc Ping(M) returns (M) { option idempotency_level = NO_SIDE_EFFECTS; }
  rpc Only(M) returns (M);
}
service Beta {
  rpc Ping(M) returns (stream M);
  rpc Renamed(M) returns (M) { option (switchboard.trpc_name) = "customName"; }
  rpc Upload(stream M) returns (M);
}
"""


def test_trpc_names_nesting_and_json_types(project):
    """Names two services share nest under the services; switchboard.trpc_name renames;
    client streams are no procedures; 64-bit integers are strings, enums their names."""
    d = project / "naming"
    d.mkdir()
    (d / "naming.proto").write_text(NAMING_PROTO)
    p = run([SB_BIN, "gen", "--out", str(d / "gen"), str(d / "naming.proto")], d)
    assert p.returncode == 0, p.stdout + p.stderr
    dts = (d / "gen" / "naming.trpc.d.ts").read_text()
    assert "upload" not in dts.lower(), dts
    src = project / "naming_client.ts"
    src.write_text(
        "import { createTRPCClient, httpBatchLink } from '@trpc/client';\n"
        f"import type {{ AppRouter, M, E }} from '{d / 'gen' / 'naming.trpc'}';\n"
        "const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: 'http://x/trpc' })] });\n"
        "const m: M = await trpc.alpha.ping.query({ big: '9007199254740993', e: 'E_ONE' });\n"
        "await trpc.only.mutate({ children: { a: { tags: ['x'] } } });\n"
        "await trpc.customName.mutate();\n"
        "trpc.beta.ping.subscribe({}, { onData: (x: M) => console.log(x.big) });\n"
        "const e: E | undefined = m.e;\n"
        "// @ts-expect-error: nested under its service, not at the top\n"
        "await trpc.ping.query();\n"
        "// @ts-expect-error: renamed by switchboard.trpc_name\n"
        "await trpc.renamed.mutate();\n"
        "// @ts-expect-error: int64 is a string in proto3 JSON\n"
        "await trpc.alpha.ping.query({ big: 1 });\n"
        "// @ts-expect-error: enums are their value names\n"
        "await trpc.alpha.ping.query({ e: 'E_TWO' });\n"
        "console.log(e);\n"
        "export {};\n")
    p = tsc(project, [src])
    assert p.returncode == 0, dts + "\n" + p.stdout + p.stderr
