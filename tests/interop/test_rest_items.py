"""REST/JSON from a .proto contract: the items example (examples/items) driven with curl.

Covers the routes from google.api.http bindings, success statuses (201, 204), the error model
({"code","message","details"} with the mapped HTTP status and the field path), the proto3 JSON
mapping on the wire, path/query/body binding, ETag/304 and Cache-Control on side-effect-free
methods, the default POST /<package>.<Service>/<Method> route, HTTP/2, and SSE for the
server-streaming method."""

import json

import pytest

from helpers import curl, split_head_body

JSON = ["-H", "content-type: application/json"]


def out(r):
    return r.stdout.decode() if isinstance(r.stdout, bytes) else r.stdout


def call(port, method, path, body=None, extra=()):
    args = ["-i", "-X", method, f"http://127.0.0.1:{port}{path}", *extra]
    if body is not None:
        args += JSON + ["--data-binary", body if isinstance(body, str) else json.dumps(body)]
    r = curl(*args)
    raw = r.stdout if isinstance(r.stdout, bytes) else r.stdout.encode("latin-1")
    blocks, payload = split_head_body(raw)
    head = blocks[-1]
    status = int(head.split()[1])
    headers = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, payload


def jcall(port, method, path, body=None, extra=()):
    status, headers, payload = call(port, method, path, body, extra)
    return status, headers, (json.loads(payload) if payload.strip() else None)


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


def test_create_get_and_not_found(items):
    st, h, b = jcall(items.port, "POST", "/items", {"name": "lamp", "price": 12.5})
    assert st == 201 and b == {"id": 1, "name": "lamp", "price": 12.5}
    assert h["content-type"] == "application/json"
    st, h, b = jcall(items.port, "GET", "/items/1")
    assert st == 200 and b == {"id": 1, "name": "lamp", "price": 12.5}
    assert h["cache-control"] == "max-age=60"
    st, _, b = jcall(items.port, "GET", "/items/42")
    assert st == 404
    assert b["code"] == 5 and "42" in b["message"] and b["details"] == []
    # the additional binding serves the same method
    st, _, b = jcall(items.port, "GET", "/v1/items/1")
    assert st == 200 and b["name"] == "lamp"


def test_list_paging_update_delete(items):
    for i in range(3):
        assert jcall(items.port, "POST", "/items", {"name": f"n{i}", "price": i + 1})[0] == 201
    st, _, b = jcall(items.port, "GET", "/items?page_size=2")
    assert st == 200 and [x["id"] for x in b["items"]] == [1, 2]
    st, _, b2 = jcall(items.port, "GET", f"/items?page_size=2&page_token={b['nextPageToken']}")
    assert [x["id"] for x in b2["items"]] == [3] and "nextPageToken" not in b2
    # snake_case query names are accepted too
    st, _, b3 = jcall(items.port, "GET", "/items?page_size=1&page_token=3")
    assert [x["id"] for x in b3["items"]] == [3]
    # PATCH with body "item": only populated fields change without a mask
    st, _, b = jcall(items.port, "PATCH", "/items/2", {"price": 9.5})
    assert st == 200 and b == {"id": 2, "name": "n1", "price": 9.5}
    # ...and only the masked ones with an update_mask (FieldMask from the query)
    st, _, b = jcall(items.port, "PATCH", "/items/2?updateMask=name", {"name": "x", "price": 1})
    assert b == {"id": 2, "name": "x", "price": 9.5}
    # PUT binding with body "*": the path variable item.id wins over the body
    st, _, b = jcall(items.port, "PUT", "/items/2",
                     {"item": {"id": 99, "name": "y"}, "updateMask": "name"})
    assert st == 200 and b["id"] == 2 and b["name"] == "y"
    status, headers, payload = call(items.port, "DELETE", "/items/2")
    assert status == 204 and payload == b""
    assert jcall(items.port, "GET", "/items/2")[0] == 404
    assert jcall(items.port, "DELETE", "/items/2")[0] == 404


def test_proto3_json_on_the_wire(items):
    # numbers as strings and integral floats are accepted for numeric fields
    st, _, b = jcall(items.port, "POST", "/items", '{"name":"a","price":"2.5"}')
    assert st == 201 and b["price"] == 2.5
    # the default route: POST /<package>.<Service>/<Method>, JSON in and out
    st, _, b = jcall(items.port, "POST", "/items.v1.ItemService/GetItem", {"id": "1"})
    assert st == 200 and b["name"] == "a"
    st, _, b = jcall(items.port, "POST", "/items.v1.ItemService/GetItem", {"id": 1e0})
    assert st == 200


@pytest.mark.parametrize("path,body,field,fragment", [
    ("/items", '{"name":"x","price":"abc"}', "price", "number"),
    ("/items", '{"name":"x","bogus":1}', "bogus", "unknown field"),
    ("/items", '{"name":"x","price":true}', "price", "number"),
    ("/items", '{"name":5}', "name", "string"),
    ("/items", '{"name":"x","name":"y"}', "name", "more than once"),
    ("/items", '{"name":"\\ud800"}', "name", ""),
    ("/items", '{"name":', "name", ""),
    ("/items", '[1]', "", "object"),
])
def test_bad_bodies_are_400_with_field_path(items, path, body, field, fragment):
    st, _, b = jcall(items.port, "POST", path, body)
    assert st == 400, b
    assert b["code"] == 3
    assert fragment in b["message"]
    if field:
        assert b["message"].startswith(field + ":")
        v = b["details"][0]["fieldViolations"][0]
        assert v["field"] == field


def test_validation_rules_list_every_violated_field(items):
    # items.proto: name 1..200 code points, price >= 0, page_size <= 1000, item required.
    st, _, b = jcall(items.port, "POST", "/items", {"name": "", "price": -1})
    assert st == 400, b
    assert b["code"] == 3
    assert b["message"] == ("invalid request: name: must be at least 1 character "
                            "(and 1 more violation)")
    [detail] = b["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["fieldViolations"] == [
        {"field": "name", "description": "must be at least 1 character"},
        {"field": "price", "description": "must be at least 0"},
    ]
    # code points, not bytes: 200 two-byte characters pass, 201 do not
    st, _, b = jcall(items.port, "POST", "/items", {"name": "\u00e9" * 200, "price": 1})
    assert st == 201, b
    st, _, b = jcall(items.port, "POST", "/items", {"name": "\u00e9" * 201, "price": 1})
    assert st == 400 and b["details"][0]["fieldViolations"] == [
        {"field": "name", "description": "must be at most 200 characters"}]
    # query parameters go through the same rules
    st, _, b = jcall(items.port, "GET", "/items?pageSize=1001")
    assert st == 400 and b["details"][0]["fieldViolations"][0] == {
        "field": "page_size", "description": "must be at most 1000"}
    st, _, b = jcall(items.port, "GET", "/items?pageSize=1000")
    assert st == 200
    # the default route (no HTTP binding involved) validates identically
    st, _, b = jcall(items.port, "POST", "/items.v1.ItemService/CreateItem", {"price": 2})
    assert st == 400 and b["details"][0]["fieldViolations"] == [
        {"field": "name", "description": "must be at least 1 character"}]
    # nothing was created by the rejected requests
    st, _, b = jcall(items.port, "GET", "/items")
    assert st == 200 and len(b["items"]) == 1


def test_unknown_fields_can_be_ignored(server_factory):
    srv = server_factory("--json-unknown-fields", "ignore", kind="items")
    st, _, b = jcall(srv.port, "POST", "/items", {"name": "x", "price": 1, "colour": "red"})
    assert st == 201 and b == {"id": 1, "name": "x", "price": 1}
    st, _, b = jcall(srv.port, "GET", "/items?pageSize=5&nope=1")
    assert st == 200 and len(b["items"]) == 1
    # still strict about what it knows: a wrong type is an error
    st, _, b = jcall(srv.port, "POST", "/items", {"name": 5})
    assert st == 400 and b["details"][0]["fieldViolations"][0]["field"] == "name"


def test_openapi_carries_validation_rules(items):
    st, _, doc = jcall(items.port, "GET", "/openapi.json")
    assert st == 200
    schemas = doc["components"]["schemas"]
    create = schemas["items.v1.CreateItemRequest"]["properties"]
    assert create["name"]["minLength"] == 1 and create["name"]["maxLength"] == 200
    assert create["price"]["minimum"] == 0
    assert schemas["items.v1.UpdateItemRequest"]["required"] == ["item"]
    params = {p["name"]: p for p in doc["paths"]["/items"]["get"]["parameters"]}
    assert params["pageSize"]["schema"]["maximum"] == 1000


def test_bad_path_and_query_params(items):
    st, _, b = jcall(items.port, "GET", "/items/abc")
    assert st == 400 and b["details"][0]["fieldViolations"][0]["field"] == "id"
    st, _, b = jcall(items.port, "GET", "/items/4294967296")  # uint32 overflow
    assert st == 400 and "range" in b["message"]
    st, _, b = jcall(items.port, "GET", "/items?nope=1")
    assert st == 400 and b["message"].startswith("nope:")
    st, _, b = jcall(items.port, "GET", "/items/1?id=2")  # bound by the path
    assert st == 400


def test_content_type_method_and_route_errors(items):
    r = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
             f"http://127.0.0.1:{items.port}/items", "--data-binary", '{"name":"f"}',
             "-H", "content-type: text/plain")
    assert out(r) == "415"
    st, _, b = jcall(items.port, "PUT", "/items")
    assert st == 405 and b["code"] == 12
    st, _, b = jcall(items.port, "GET", "/no/such/route")
    assert st == 404 and b["code"] == 5


def test_etag_and_304(items):
    jcall(items.port, "POST", "/items", {"name": "e", "price": 1})
    st, h, _ = jcall(items.port, "GET", "/items/1")
    etag = h["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    r = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag}",
             f"http://127.0.0.1:{items.port}/items/1")
    assert out(r) == "304"
    jcall(items.port, "PATCH", "/items/1", {"price": 2})
    r = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag}",
             f"http://127.0.0.1:{items.port}/items/1")
    assert out(r) == "200"  # changed representation, new validator


def test_http2_and_sse(items):
    jcall(items.port, "POST", "/items", {"name": "s1", "price": 1})
    jcall(items.port, "POST", "/items", {"name": "s2", "price": 2})
    r = curl("--http2-prior-knowledge", f"http://127.0.0.1:{items.port}/items/2")
    assert json.loads(out(r))["name"] == "s2"
    r = curl("-N", "-H", "Accept: text/event-stream", "-D", "-",
             f"http://127.0.0.1:{items.port}/items:watch?sinceId=0")
    assert "text/event-stream" in out(r)
    events = [json.loads(line[6:]) for line in out(r).splitlines() if line.startswith("data: ")]
    assert [e["item"]["name"] for e in events] == ["s1", "s2"]
    # without text/event-stream: newline-delimited JSON
    r = curl(f"http://127.0.0.1:{items.port}/items:watch?sinceId=1")
    lines = [json.loads(x) for x in out(r).splitlines() if x.strip()]
    assert [e["item"]["id"] for e in lines] == [2]


def test_idempotency_key_replay_conflict_and_mismatch(items):
    body = {"name": "once", "price": 1}
    key = ["-H", "Idempotency-Key: k-123"]
    st, h, b = jcall(items.port, "POST", "/items", body, key)
    assert st == 201 and b["id"] == 1 and "idempotent-replayed" not in h
    # a retry with the same key replays the stored response: the handler does not run again
    st, h, b2 = jcall(items.port, "POST", "/items", body, key)
    assert st == 201 and b2 == b and h.get("idempotent-replayed") == "true"
    st, _, lst = jcall(items.port, "GET", "/items")
    assert [x["name"] for x in lst["items"]] == ["once"]
    # the same key with a different body is refused
    st, _, e = jcall(items.port, "POST", "/items", {"name": "other", "price": 2}, key)
    assert st == 422 and e["code"] == 3 and "Idempotency-Key" in e["message"]
    # another key runs the handler again; errors are replayed too (they are not 5xx)
    st, _, b3 = jcall(items.port, "POST", "/items", body, ["-H", "Idempotency-Key: k-2"])
    assert st == 201 and b3["id"] == 2
    st, _, _ = jcall(items.port, "DELETE", "/items/99", None, ["-H", "Idempotency-Key: d-1"])
    assert st == 404
    jcall(items.port, "POST", "/items", {"name": "x", "price": 1})  # id 3
    st, h, _ = jcall(items.port, "DELETE", "/items/99", None, ["-H", "Idempotency-Key: d-1"])
    assert st == 404 and h.get("idempotent-replayed") == "true"
    # safe methods ignore the header; an over-long key is a 400
    st, h, _ = jcall(items.port, "GET", "/items/1", None, key)
    assert st == 200 and "idempotent-replayed" not in h
    st, _, e = jcall(items.port, "POST", "/items", body, ["-H", "Idempotency-Key: " + "k" * 300])
    assert st == 400


def test_openapi_json_describes_the_contract(items):
    st, h, doc = jcall(items.port, "GET", "/openapi.json")
    assert st == 200 and h["content-type"] == "application/json"
    assert doc["openapi"] == "3.1.0"
    paths = doc["paths"]
    assert paths["/items/{id}"]["get"]["operationId"] == "ItemService_GetItem"
    assert "post" in paths["/items"] and "get" in paths["/items"]
    # PATCH /items/{item.id} has the same shape as /items/{id}: OpenAPI sees one path, and
    # the parameter says which request field it binds
    patch = paths["/items/{id}"]["patch"]
    assert "/items/{item.id}" not in paths
    assert patch["parameters"][0]["name"] == "id"
    assert "item.id" in patch["parameters"][0]["description"]
    assert "text/event-stream" in paths["/items:watch"]["get"]["responses"]["200"]["content"]
    created = paths["/items"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"] == "#/components/schemas/items.v1.Item"
    item = doc["components"]["schemas"]["items.v1.Item"]
    assert item["properties"]["id"]["format"] == "uint32"
    assert item["properties"]["price"]["type"] == "number"
    # what the document promises is what the server does: the documented GET works
    jcall(items.port, "POST", "/items", {"name": "doc", "price": 1})
    st, _, b = jcall(items.port, "GET", "/items/1")
    assert st == 200 and set(b) <= set(item["properties"])


def test_openapi_json_passes_redocly_lint(items, tmp_path):
    """The served document passes a real OpenAPI validator (@redocly/cli, pinned in
    package-lock.json) with zero errors under its recommended rules."""
    import os
    import subprocess
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    redocly = os.path.join(root, "node_modules", ".bin", "redocly")
    assert os.access(redocly, os.X_OK), "run scripts/node-deps.sh (make test does)"
    doc = tmp_path / "openapi.json"
    r = curl("-o", str(doc), f"http://127.0.0.1:{items.port}/openapi.json")
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")
    p = subprocess.run([redocly, "lint", str(doc), "--format=json"], capture_output=True,
                       text=True, timeout=120, env=env, cwd=str(tmp_path))
    start = p.stdout.find("{")
    assert start >= 0, p.stdout + p.stderr
    report = json.loads(p.stdout[start:])
    errors = [x for x in report.get("problems", []) if x.get("severity") == "error"]
    assert report["totals"]["errors"] == 0, errors[:5]
