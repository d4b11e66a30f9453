"""The tRPC wire, request by request, against @trpc/server itself.

Every request below goes to the items example (C) and to the same procedures served by
@trpc/server v11's standalone adapter with zod (tests/interop/node/trpc_reference.mjs), and the
two answers must agree: the HTTP status, the headers tRPC clients read (content-type, vary,
allow), and the JSON envelope. What legitimately differs is left out of the comparison:
  - error "message" texts (zod and JSON.parse word their errors their own way; ours name the
    .proto field and the proto3 JSON rule);
  - "stack" (the reference runs with isDev off, so it has none anyway);
  - item data where the stores differ (each call below is built so the data agree, or
    compares only the envelope's shape).
Both servers start empty; items are created through the same mutation on both.
"""

import json
import os
import subprocess
import time
import urllib.parse

import pytest

from helpers import connect, build_request, split_head_body

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REFERENCE = os.path.join(ROOT, "tests", "interop", "node", "trpc_reference.mjs")


@pytest.fixture
def reference(tmp_path):
    log = open(tmp_path / "reference.log", "w+")
    p = subprocess.Popen(["node", REFERENCE, "0"], stdout=subprocess.PIPE, stderr=log, text=True,
                         cwd=ROOT)
    line = p.stdout.readline()
    assert line.startswith("listening "), f"reference did not start: {line!r}"
    yield int(line.split()[1])
    p.terminate()
    p.wait(10)
    log.close()


@pytest.fixture
def items(server_factory):
    return server_factory(kind="items")


def exchange(port, method, path, headers=(), body=None):
    """One request on its own connection: (status, headers dict, body bytes)."""
    hdrs = list(headers)
    if body is not None:
        hdrs.append(("content-length", str(len(body))))
    s = connect(port)
    s.sendall(build_request(method, path, headers=hdrs + [("connection", "close")], body=body))
    raw = b""
    deadline = time.time() + 10
    while time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        raw += chunk
    s.close()
    blocks, data = split_head_body(raw)
    lines = blocks[-1].split("\r\n")
    status = int(lines[0].split()[1])
    hmap = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hmap[k.strip().lower()] = v.strip()
    if hmap.get("transfer-encoding", "").lower() == "chunked":
        data = dechunk(data)
    return status, hmap, data


def dechunk(data):
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


def strip(v):
    """The envelope without the texts that may differ (message, stack)."""
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in ("message", "stack")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


def q(obj):
    return urllib.parse.quote(json.dumps(obj, separators=(",", ":")), safe="")


JSON = [("content-type", "application/json")]

# name: (method, path, headers, body). Paths are below /trpc.
CASES = {
    # Calls that work, single and batched, for the envelope and status of success.
    "query": ("GET", f"/getItem?input={q({'id': 1})}", [], None),
    "query_no_input": ("GET", "/listItems", [], None),
    "batch_queries": ("GET", f"/getItem,getItem?batch=1&input={q({'0': {'id': 1}, '1': {'id': 1}})}",
                      [], None),
    "batch_mixed_207": ("GET", f"/getItem,getItem?batch=1&input={q({'0': {'id': 1}, '1': {'id': 77}})}",
                        [], None),
    "batch_all_404": ("GET", f"/getItem,nope?batch=1&input={q({'0': {'id': 77}})}", [], None),
    "handler_not_found": ("GET", f"/getItem?input={q({'id': 77})}", [], None),
    "jsonl_batch": ("GET", f"/getItem,getItem?batch=1&input={q({'0': {'id': 1}, '1': {'id': 77}})}",
                    [("trpc-accept", "application/jsonl")], None),
    # Malformed input JSON: single, and a batch.
    "malformed_input": ("GET", "/getItem?input=%7Bnot-json", [], None),
    "malformed_batch_input": ("GET", "/getItem,getItem?batch=1&input=%7B%220%22%3A", [], None),
    "malformed_body": ("POST", "/createItem", JSON, b'{"name": "x",'),
    # Batch inputs not keyed by index: an array is rejected; other keys are no input at all.
    "batch_input_array": ("GET", f"/getItem,getItem?batch=1&input={q([{'id': 1}, {'id': 1}])}",
                          [], None),
    "batch_input_scalar": ("POST", "/createItem,createItem?batch=1", JSON, b"42"),
    "batch_input_other_keys": ("GET", f"/getItem?batch=1&input={q({'a': {'id': 1}})}", [], None),
    # Input the procedure's schema rejects (zod there, the contract's rules here).
    "wrong_input_type": ("GET", f"/getItem?input={q({'id': 'one'})}", [], None),
    "validation": ("POST", "/createItem", JSON, b'{"name": "", "price": -1}'),
    # Unknown procedures, single and batched.
    "unknown_procedure": ("GET", "/noSuchProcedure", [], None),
    "unknown_in_batch": ("GET", f"/getItem,noSuch?batch=1&input={q({'0': {'id': 1}})}", [], None),
    # Wrong methods: a query POSTed without method override, a mutation as GET, a PUT.
    "query_as_post": ("POST", "/getItem", JSON, b'{"id": 1}'),
    "mutation_as_get": ("GET", f"/createItem?input={q({'name': 'x'})}", [], None),
    "batch_mutation_as_get": ("GET", f"/createItem,createItem?batch=1&input={q({})}", [], None),
    "put": ("PUT", "/createItem", JSON, b'{"name": "x"}'),
    # Content types: none on a POST, a wrong one, and JSON with parameters (accepted).
    "post_no_content_type": ("POST", "/createItem", [], b'{"name": "x"}'),
    "post_text_plain": ("POST", "/createItem", [("content-type", "text/plain")], b'{"name": "x"}'),
    "post_json_charset": ("POST", "/deleteItem", [("content-type", "Application/JSON; charset=utf-8")],
                          b'{"id": 77}'),
    # Batches that cannot run at all.
    "mixed_types": ("POST", "/getItem,createItem?batch=1", JSON, b'{}'),
    "jsonl_without_batch": ("GET", f"/getItem?input={q({'id': 1})}",
                            [("trpc-accept", "application/jsonl")], None),
    "subscription_in_batch": ("GET", "/watchItems,watchItems?batch=1", [], None),
    # Percent-encoding that is not UTF-8, in the path.
    "bad_path_encoding": ("GET", "/get%FFItem", [], None),
    # HEAD (lambda warm-up in tRPC's words).
    "head": ("HEAD", "/getItem", [], None),
}

# Headers both must send alike, where present in either.
COMPARED_HEADERS = ("content-type", "vary", "allow")


def body_of(status, headers, data, case):
    if not data:
        return None
    if CASES[case][2] and ("trpc-accept", "application/jsonl") in CASES[case][2] and status == 200:
        # The head line first; then each call's lines as it settles, which is a race in
        # @trpc/server (a rejected promise settles sooner), so compare those as a set.
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        return lines[:1] + sorted(lines[1:], key=json.dumps)
    return json.loads(data)


def test_same_answers_as_trpc_server(items, reference):
    # The same first item on both (id 1).
    for port in (items.port, reference):
        st, _, _ = exchange(port, "POST", "/trpc/createItem", JSON, b'{"name":"lamp","price":12.5}')
        assert st == 200
    mismatches = []
    for case, (method, path, headers, body) in CASES.items():
        ours = exchange(items.port, method, "/trpc" + path, headers, body)
        theirs = exchange(reference, method, "/trpc" + path, headers, body)
        got = {"status": ours[0], "body": strip(body_of(*ours, case)),
               "headers": {h: ours[1].get(h) for h in COMPARED_HEADERS}}
        want = {"status": theirs[0], "body": strip(body_of(*theirs, case)),
                "headers": {h: theirs[1].get(h) for h in COMPARED_HEADERS}}
        if got != want:
            mismatches.append(f"{case}: {method} {path}\n  ours:   {got}\n  theirs: {want}")
    assert not mismatches, "\n".join(mismatches)


def test_method_override(server_factory):
    """With --trpc-method-override on, queries may be POSTed (httpLink's methodOverride);
    mutations still may not be called with GET."""
    srv = server_factory("--trpc-method-override", "on", kind="items")
    st, _, data = exchange(srv.port, "POST", "/trpc/listItems", JSON, b"{}")
    assert st == 200 and json.loads(data) == {"result": {"data": {}}}, data
    st, h, data = exchange(srv.port, "GET", f"/trpc/createItem?input={q({'name': 'x'})}")
    assert st == 405 and h.get("allow") == "POST", (st, h, data)


def test_base_path(server_factory):
    """--trpc-base moves the procedures; the old base is REST's again (404 from REST)."""
    srv = server_factory("--trpc-base", "/api/trpc/", kind="items")
    st, _, data = exchange(srv.port, "GET", "/api/trpc/listItems")
    assert st == 200 and json.loads(data)["result"]["data"] == {}, data
    st, _, data = exchange(srv.port, "GET", "/trpc/listItems")
    assert st == 404 and "error" not in json.loads(data), data


def test_subscription_sse_and_last_event_id(items):
    for name in ("a", "b", "c"):
        st, _, _ = exchange(items.port, "POST", "/trpc/createItem", JSON,
                            json.dumps({"name": name}).encode())
        assert st == 200
    st, h, data = exchange(items.port, "GET", "/trpc/watchItems", [("last-event-id", "1")])
    assert st == 200 and h["content-type"] == "text/event-stream", (st, h)
    text = data.decode()
    # connected, then items 2 and 3 with their ids, then return; each event ends "\n\n\n".
    assert text.startswith("event: connected\ndata: {}\n\n\n"), text
    assert 'data: {"item":{"id":2,"name":"b"}}\nid: 2\n\n\n' in text, text
    assert 'data: {"item":{"id":3,"name":"c"}}\nid: 3\n\n\n' in text, text
    assert '"id":1,' not in text and text.endswith("event: return\ndata: \n\n\n"), text
    # The query parameter form, as an EventSource polyfill without headers sends it.
    st, _, data = exchange(items.port, "GET", "/trpc/watchItems?lastEventId=2")
    assert st == 200 and "id: 3\n" in data.decode() and "id: 2\n" not in data.decode(), data
    # An input the contract rejects ends the stream with serialized-error (BAD_REQUEST).
    st, _, data = exchange(items.port, "GET", f"/trpc/watchItems?input={q({'sinceId': -1})}")
    text = data.decode()
    assert st == 200 and "event: serialized-error\ndata: " in text, text
    err = json.loads(text.split("event: serialized-error\ndata: ")[1].split("\n")[0])
    assert err["code"] == -32600 and err["data"]["code"] == "BAD_REQUEST", err
    assert err["data"]["path"] == "watchItems", err
