"""gRPC client stubs for the interop tests, generated at test time.

Python modules for a contract come from Debian's grpc_tools (python3-grpc-tools) run on the
same .proto files the server was built from, into a temporary directory that goes on sys.path.
Nothing generated is checked in, so the client can never drift from the contract.
"""

import importlib
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto")
SYSTEM_INCLUDE = "/usr/include"  # google/protobuf/*.proto from the protobuf dev packages

_generated = {}


def generate(proto_dir, files, modules):
    """Runs grpc_tools.protoc on files (names relative to proto_dir, plus switchboard's own
    option protos when they are imported) and returns the named modules, imported. Cached per
    proto_dir for the session."""
    if proto_dir not in _generated:
        out = tempfile.mkdtemp(prefix="sb-grpc-stubs-")
        extra = ["google/api/annotations.proto", "google/api/http.proto",
                 "switchboard/options.proto", "switchboard/validate.proto"]
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"-I{PROTO_DIR}",
               f"-I{SYSTEM_INCLUDE}", f"--python_out={out}", f"--grpc_python_out={out}"]
        cmd += [os.path.join(proto_dir, f) for f in files]
        cmd += [os.path.join(PROTO_DIR, f) for f in extra]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        sys.path.insert(0, out)
        _generated[proto_dir] = out
    return [importlib.import_module(m) for m in modules]


def items():
    """(items_pb2, items_pb2_grpc) for examples/items/items.proto."""
    return generate(os.path.join(ROOT, "examples", "items"), ["items.proto"],
                    ["items_pb2", "items_pb2_grpc"])


def interop():
    """(empty_pb2, messages_pb2, test_pb2_grpc) for examples/interop."""
    return generate(os.path.join(ROOT, "examples", "interop"),
                    ["empty.proto", "messages.proto", "test.proto"],
                    ["empty_pb2", "messages_pb2", "test_pb2_grpc"])


def services():
    """(health_pb2, health_pb2_grpc, reflection_v1_pb2, reflection_v1_pb2_grpc,
    reflection_v1alpha_pb2, reflection_v1alpha_pb2_grpc) for the built-in gRPC services."""
    src = os.path.join(ROOT, "src", "protocols", "grpc", "proto")
    work = tempfile.mkdtemp(prefix="sb-grpc-protos-")
    # The two reflection versions come from one template, as in the build (CMakeLists.txt).
    with open(os.path.join(src, "reflection.proto.in")) as f:
        template = f.read()
    for version in ("v1", "v1alpha"):
        with open(os.path.join(work, f"reflection_{version}.proto"), "w") as f:
            f.write(template.replace("@SB_REFLECTION_VERSION@", version))
    with open(os.path.join(src, "health.proto")) as f, \
            open(os.path.join(work, "health.proto"), "w") as g:
        g.write(f.read())
    names = ["health", "reflection_v1", "reflection_v1alpha"]
    return generate(work, [n + ".proto" for n in names],
                    [m for n in names for m in (n + "_pb2", n + "_pb2_grpc")])
