"""The gRPC services every switchboard listener offers: health checking (grpc.health.v1) and
server reflection (grpc.reflection.v1 and v1alpha), driven by grpcio clients generated from the
protocols' .proto files. Two reflection tests rebuild ItemService from what reflection returns
alone (no items.proto) and call GetItem with it: one with grpcio and a fresh descriptor pool,
one with @grpc/grpc-js (tests/interop/node/grpc_reflection.mjs) and proto-loader's
FileDescriptorSet loader."""

import json
import os
import subprocess

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import grpc_stubs

hpb, hpbg, r1, r1g, ra, rag = grpc_stubs.services()
ipb, ipbg = grpc_stubs.items()
TIMEOUT = 10
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture
def server(server_factory):
    return server_factory(kind="items")


@pytest.fixture
def channel(server):
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield ch
    ch.close()


def test_health_check(channel):
    h = hpbg.HealthStub(channel)
    SERVING = hpb.HealthCheckResponse.SERVING
    assert h.Check(hpb.HealthCheckRequest(), timeout=TIMEOUT).status == SERVING
    assert h.Check(hpb.HealthCheckRequest(service="items.v1.ItemService"),
                   timeout=TIMEOUT).status == SERVING
    with pytest.raises(grpc.RpcError) as e:
        h.Check(hpb.HealthCheckRequest(service="no.Such"), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch(channel):
    h = hpbg.HealthStub(channel)
    stream = h.Watch(hpb.HealthCheckRequest(service="no.Such"), timeout=TIMEOUT)
    assert next(stream).status == hpb.HealthCheckResponse.SERVICE_UNKNOWN
    stream.cancel()
    stream = h.Watch(hpb.HealthCheckRequest(), timeout=TIMEOUT)
    assert next(stream).status == hpb.HealthCheckResponse.SERVING
    stream.cancel()
    # The watched streams ended with the clients: the server still answers.
    assert h.Check(hpb.HealthCheckRequest(), timeout=TIMEOUT).status == \
        hpb.HealthCheckResponse.SERVING


def reflect(stub, pb, **req):
    return list(stub.ServerReflectionInfo(iter([pb.ServerReflectionRequest(**req)]),
                                          timeout=TIMEOUT))[0]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_list_services(channel, version):
    pb, stub = (r1, r1g.ServerReflectionStub(channel)) if version == "v1" else \
        (ra, rag.ServerReflectionStub(channel))
    res = reflect(stub, pb, list_services="")
    names = {s.name for s in res.list_services_response.service}
    assert names == {"items.v1.ItemService", "grpc.health.v1.Health",
                     "grpc.reflection.v1.ServerReflection",
                     "grpc.reflection.v1alpha.ServerReflection"}
    assert res.original_request.list_services == ""


def test_errors_and_several_requests_on_one_stream(channel):
    stub = r1g.ServerReflectionStub(channel)
    reqs = [r1.ServerReflectionRequest(file_containing_symbol="no.Such"),
            r1.ServerReflectionRequest(file_by_filename="items.proto"),
            r1.ServerReflectionRequest(all_extension_numbers_of_type="items.v1.Item")]
    got = list(stub.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT))
    assert got[0].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    fd = descriptor_pb2.FileDescriptorProto.FromString(
        got[1].file_descriptor_response.file_descriptor_proto[0])
    assert fd.name == "items.proto" and fd.package == "items.v1"
    assert got[2].error_response.error_code == grpc.StatusCode.UNIMPLEMENTED.value[0]


def test_symbols_resolve(channel):
    stub = r1g.ServerReflectionStub(channel)
    for sym in ("items.v1.ItemService", "items.v1.ItemService.GetItem", "items.v1.Item",
                ".items.v1.ItemEvent", "google.protobuf.Empty",
                "google.protobuf.FieldDescriptorProto.Type", "grpc.health.v1.Health"):
        res = reflect(stub, r1, file_containing_symbol=sym)
        assert res.WhichOneof("message_response") == "file_descriptor_response", sym


def test_call_from_reflection_alone(channel):
    # Seed an item over the generated stub, then forget items.proto.
    ipbg.ItemServiceStub(channel).CreateItem(ipb.CreateItemRequest(name="found", price=2),
                                             timeout=TIMEOUT)
    stub = r1g.ServerReflectionStub(channel)
    names = [s.name for s in reflect(stub, r1, list_services="").list_services_response.service]
    assert "items.v1.ItemService" in names
    res = reflect(stub, r1, file_containing_symbol="items.v1.ItemService")
    files = {}
    for blob in res.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
        files[fd.name] = fd
    pool = descriptor_pool.DescriptorPool()

    def add(name):
        if name not in files:
            # Imports the first answer did not carry: ask for them by name.
            r = reflect(stub, r1, file_by_filename=name)
            for blob in r.file_descriptor_response.file_descriptor_proto:
                fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
                files.setdefault(fd.name, fd)
        fd = files.pop(name, None)
        if fd is None:
            return
        for dep in fd.dependency:
            add(dep)
        pool.Add(fd)

    for name in list(files):
        add(name)
    svc = pool.FindServiceByName("items.v1.ItemService")
    method = svc.methods_by_name["GetItem"]
    if hasattr(message_factory, "GetMessageClass"):
        req_cls = message_factory.GetMessageClass(method.input_type)
        res_cls = message_factory.GetMessageClass(method.output_type)
    else:
        factory = message_factory.MessageFactory(pool)
        req_cls = factory.GetPrototype(method.input_type)
        res_cls = factory.GetPrototype(method.output_type)
    get = channel.unary_unary(f"/{svc.full_name}/{method.name}",
                              request_serializer=req_cls.SerializeToString,
                              response_deserializer=res_cls.FromString)
    item = get(req_cls(id=1), timeout=TIMEOUT)
    assert item.name == "found" and item.price == 2


def test_grpc_js_call_from_reflection_alone(server, channel):
    ipbg.ItemServiceStub(channel).CreateItem(ipb.CreateItemRequest(name="seen", price=3.25),
                                             timeout=TIMEOUT)
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "interop", "node",
                                             "grpc_reflection.mjs"),
                        f"127.0.0.1:{server.port}", "1"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    res = json.loads(lines[-1])
    assert "error" not in res and p.returncode == 0, res.get("error", p.stderr)
    assert "items.v1.ItemService" in res["services"], res["services"]
    # items.proto and what it imports, all from the server.
    for f in ("items.proto", "google/api/annotations.proto", "google/protobuf/empty.proto",
              "google/protobuf/descriptor.proto", "switchboard/options.proto"):
        assert f in res["files"], (f, res["files"])
    assert {"GetItem", "CreateItem", "WatchItems"} <= set(res["methods"]), res["methods"]
    assert res["item"] == {"id": 1, "name": "seen", "price": 3.25}
