// @connectrpc/connect-node calls switchboard with the Connect protocol: the items example and
// the interop service, over HTTP/1.1 and HTTP/2 (h2c), with the JSON and the binary codec.
//
// The schemas come from the contracts at run time, with no generated code: the test runs
// `protoc --descriptor_set_out --include_imports` on each contract and hands the files here;
// @bufbuild/protobuf turns each FileDescriptorSet into a registry, whose services the client
// is created from.
//
// Usage: node connect_client.mjs <items-base-url> <items.binpb> <interop-base-url> <interop.binpb>
// Prints one JSON line per check group {"check", "ok", "error"?}; exits 1 when any failed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, Http2SessionManager } from '@connectrpc/connect-node';

const [itemsUrl, itemsSet, interopUrl, interopSet] = process.argv.slice(2);
if (!interopSet) {
  console.error('usage: node connect_client.mjs <items-url> <items.binpb> <interop-url> ' +
    '<interop.binpb>');
  process.exit(2);
}

const CALL_MS = 10000; // per call: a hung server fails the check instead of hanging the run

function service(setPath, name) {
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(setPath)));
  const svc = registry.getService(name);
  assert.ok(svc, `${name} not in ${setPath}`);
  return svc;
}
const ItemService = service(itemsSet, 'items.v1.ItemService');
const TestService = service(interopSet, 'grpc.testing.TestService');

/** A client of svc at baseUrl over the given HTTP version and codec. */
function client(svc, baseUrl, httpVersion, binary, extra = {}) {
  const transport = createConnectTransport({ baseUrl, httpVersion, useBinaryFormat: binary,
    defaultTimeoutMs: CALL_MS, ...extra });
  return createClient(svc, transport);
}

async function expectError(promise, code, message) {
  try {
    await promise;
  } catch (e) {
    const err = ConnectError.from(e);
    assert.equal(Code[err.code], Code[code], `code (message: ${err.rawMessage})`);
    if (message !== undefined) assert.equal(err.rawMessage, message);
    return err;
  }
  assert.fail(`expected ${Code[code]}, the call succeeded`);
}

const zeros = (n) => new Uint8Array(n);
const checks = [];
const combos = [];
for (const httpVersion of ['1.1', '2'])
  for (const binary of [false, true]) combos.push({ httpVersion, binary });
const label = ({ httpVersion, binary }) => `http${httpVersion}/${binary ? 'proto' : 'json'}`;

// ---- items: unary (POST and GET) and server streaming, on both HTTP versions and codecs ----
let created = 0;
for (const combo of combos) {
  checks.push([`items unary ${label(combo)}`, async () => {
    const c = client(ItemService, itemsUrl, combo.httpVersion, combo.binary);
    const name = `item ${label(combo)} \u263a`;
    const it = await c.createItem({ name, price: 12.5 });
    created++;
    assert.equal(it.id, created);
    assert.equal(it.name, name);
    assert.equal(it.price, 12.5);
    let contentType;
    const got = await c.getItem({ id: it.id }, { onHeader: (h) => (contentType = h.get('content-type')) });
    assert.deepEqual([got.id, got.name, got.price], [it.id, name, 12.5]);
    assert.equal(contentType, combo.binary ? 'application/proto' : 'application/json');
    await expectError(c.getItem({ id: 4000000 }), Code.NotFound, 'item 4000000 not found');
    await expectError(c.createItem({ name: '' }), Code.InvalidArgument);
  }]);

  checks.push([`items GET (side-effect free) ${label(combo)}`, async () => {
    // useHttpGet: methods marked NO_SIDE_EFFECTS go as GET ?connect=v1&encoding=&message=.
    // The HTTP method of each request, seen where the transport hands it to Node: the HTTP/2
    // session manager's request() or the HTTP/1.1 agent's addRequest().
    const methods = [];
    const spy = combo.httpVersion === '2'
      ? { sessionManager: new (class extends Http2SessionManager {
          request(method, ...rest) {
            methods.push(method);
            return super.request(method, ...rest);
          }
        })(itemsUrl) }
      : { nodeOptions: { agent: new (class extends http.Agent {
          addRequest(req, ...rest) {
            methods.push(req.method);
            return super.addRequest(req, ...rest);
          }
        })() } };
    const c = client(ItemService, itemsUrl, combo.httpVersion, combo.binary,
      { useHttpGet: true, ...spy });
    let contentType;
    const got = await c.getItem({ id: 1 }, { onHeader: (h) => (contentType = h.get('content-type')) });
    assert.equal(got.id, 1);
    assert.equal(contentType, combo.binary ? 'application/proto' : 'application/json');
    const list = await c.listItems({ pageSize: 100 });
    assert.ok(list.items.length >= 1 && list.items[0].id === 1, 'ListItems over GET');
    await expectError(c.getItem({ id: 4000000 }), Code.NotFound);
    await c.createItem({ name: 'posted', price: 1 }); // has side effects: still a POST
    created++;
    assert.deepEqual(methods, ['GET', 'GET', 'GET', 'POST']);
  }]);

  checks.push([`items server streaming ${label(combo)}`, async () => {
    const c = client(ItemService, itemsUrl, combo.httpVersion, combo.binary);
    const ids = [];
    for await (const ev of c.watchItems({ sinceId: 0 })) {
      assert.equal(ev.deleted, false);
      ids.push(ev.item.id);
    }
    assert.deepEqual(ids, Array.from({ length: created }, (_, i) => i + 1));
  }]);
}

// ---- interop: every streaming shape, metadata, statuses, deadline ----
for (const binary of [false, true]) {
  const combo = { httpVersion: '2', binary };
  const c = () => client(TestService, interopUrl, '2', binary);

  checks.push([`interop unary with metadata ${label(combo)}`, async () => {
    const headers = new Headers({ 'x-grpc-test-echo-initial': 'initial value',
      'x-grpc-test-echo-trailing-bin': 'q6ur' }); // base64 of 0xab 0xab 0xab
    let header, trailer;
    const res = await c().unaryCall({ responseSize: 314159, payload: { body: zeros(271828) } },
      { headers, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
    assert.equal(res.payload.body.length, 314159);
    assert.equal(header.get('x-grpc-test-echo-initial'), 'initial value');
    assert.equal(trailer.get('x-grpc-test-echo-trailing-bin'), 'q6ur');
    const special = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
    await expectError(c().unaryCall({ responseStatus: { code: 2, message: special } }),
      Code.Unknown, special);
  }]);

  checks.push([`interop server streaming ${label(combo)}`, async () => {
    const sizes = [31415, 9, 2653, 58979];
    const got = [];
    for await (const r of c().streamingOutputCall({
      responseParameters: sizes.map((size) => ({ size })) })) got.push(r.payload.body.length);
    assert.deepEqual(got, sizes);
  }]);

  checks.push([`interop client streaming ${label(combo)}`, async () => {
    async function* requests() {
      for (const n of [27182, 8, 1828, 45904]) yield { payload: { body: zeros(n) } };
    }
    const res = await c().streamingInputCall(requests());
    assert.equal(res.aggregatedPayloadSize, 74922);
  }]);

  checks.push([`interop bidi ping-pong ${label(combo)}`, async () => {
    // Lock-step: each request is sent only after the previous response arrived, which
    // works only if the server answers while the request stream is still open.
    const responses = [31415, 9, 2653, 58979];
    const payloads = [27182, 8, 1828, 45904];
    let next;
    const turn = () => new Promise((resolve) => (next = resolve));
    async function* requests() {
      for (let i = 0; i < responses.length; i++) {
        yield { responseParameters: [{ size: responses[i] }], payload: { body: zeros(payloads[i]) } };
        await turn();
      }
    }
    const got = [];
    for await (const r of c().fullDuplexCall(requests())) {
      got.push(r.payload.body.length);
      next();
    }
    assert.deepEqual(got, responses);
  }]);

  checks.push([`interop bidi error and deadline ${label(combo)}`, async () => {
    async function* one(msg) {
      yield msg;
    }
    const stream = c().fullDuplexCall(one({ responseParameters: [{ size: 3 }],
      responseStatus: { code: 5, message: 'gone' } }));
    const got = [];
    const err = await expectError((async () => {
      for await (const r of stream) got.push(r.payload.body.length);
    })(), Code.NotFound, 'gone');
    assert.ok(err);
    assert.deepEqual(got, [3]);
    // A response that would come after 2 s, with a 200 ms deadline.
    await expectError((async () => {
      for await (const r of c().streamingOutputCall({
        responseParameters: [{ size: 1, intervalUs: 2000000 }] }, { timeoutMs: 200 })) void r;
    })(), Code.DeadlineExceeded);
  }]);
}

let failed = 0;
for (const [name, fn] of checks) {
  const out = { check: name };
  try {
    await fn();
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = String(e && e.stack ? e.stack : e);
    failed++;
  }
  console.log(JSON.stringify(out));
}
process.exit(failed ? 1 : 0);
