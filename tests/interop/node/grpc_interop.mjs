// The gRPC interop cases, with @grpc/grpc-js as the client and @grpc/proto-loader reading
// examples/interop/*.proto at run time (nothing generated, nothing checked in). Each case
// follows gRPC's interop test description of the same name.
//
// grpc-js keeps two things from its users that some cases ask about: whether a received
// message had the compressed flag set, and the grpc-encoding response header (its compression
// filter consumes both). For server_compressed_unary and server_compressed_streaming the script
// makes the same call once more with node:http2, framing the request with the serializer
// proto-loader built, and checks the flag byte of each response message itself.
//
// Usage: node grpc_interop.mjs <host:port> [case...]   (no case: all of them)
// Prints one JSON line per case, {"case", "ok", "error"?, "ms"}, and exits 1 when any failed.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = path.resolve(here, '..', '..', '..', 'examples', 'interop');
const [target, ...only] = process.argv.slice(2);
if (!target) {
  console.error('usage: node grpc_interop.mjs <host:port> [case...]');
  process.exit(2);
}

const CASE_MS = 10000; // one case; a hung server fails the case instead of hanging the run
const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';
const SPECIAL = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
const DEFLATE = 1; // grpc-js's CompressionAlgorithms: 0 identity, 1 deflate, 2 gzip
const GZIP = 2;
const NO_COMPRESS = 2; // grpc-js WriteFlags.NoCompress, passed as write()'s encoding argument

const definition = protoLoader.loadSync(['test.proto'], {
  includeDirs: [protoDir],
  keepCase: true,
  defaults: true,
  enums: String,
  longs: Number,
});
const testing = grpc.loadPackageDefinition(definition).grpc.testing;
const creds = grpc.credentials.createInsecure();
// One channel per compression setting, shared by the cases that need it.
const plain = new testing.TestService(target, creds);
const gzip = new testing.TestService(target, creds, { 'grpc.default_compression_algorithm': GZIP });
const deflate = new testing.TestService(target, creds,
  { 'grpc.default_compression_algorithm': DEFLATE });
const unimplemented = new testing.UnimplementedService(target, creds);

const zeros = (n) => Buffer.alloc(n);
const deadline = (ms = CASE_MS) => new Date(Date.now() + ms);

/** Unary call as a promise: resolves {res, headers, trailers} or rejects the ServiceError
 * (which carries code, details and the trailing metadata). */
function unary(client, method, req, { metadata = new grpc.Metadata(), ms = CASE_MS } = {}) {
  return new Promise((resolve, reject) => {
    const out = {};
    const call = client[method](req, metadata, { deadline: deadline(ms) }, (err, res) => {
      if (err) reject(err);
      else out.res = res;
    });
    call.on('metadata', (md) => (out.headers = md));
    call.on('status', (st) => {
      out.status = st;
      out.trailers = st.metadata;
      if (st.code === grpc.status.OK) resolve(out);
    });
  });
}

/** Reads a response stream to its end: resolves {messages, status, headers} whatever the
 * status (the 'error' event is consumed, so a failing status does not throw). */
function drain(call) {
  return new Promise((resolve) => {
    const out = { messages: [] };
    call.on('metadata', (md) => (out.headers = md));
    call.on('data', (m) => out.messages.push(m));
    call.on('error', () => {});
    call.on('status', (st) => {
      out.status = st;
      resolve(out);
    });
  });
}

/** Waits for a client-streaming call's single response or error. */
function clientStream(client, method, write, opts = {}) {
  return new Promise((resolve) => {
    const call = client[method](new grpc.Metadata(), { deadline: deadline() }, (err, res) =>
      resolve({ err, res }),
    );
    write(call);
    if (opts.end !== false) call.end();
  });
}

/** Asserts a failed call's code (and message, when given). */
function assertStatus(err, code, details) {
  assert.ok(err, `expected status ${code}, the call succeeded`);
  assert.equal(err.code, code, `status code (details: ${JSON.stringify(err.details)})`);
  if (details !== undefined) assert.equal(err.details, details, 'status message');
}

/** A raw HTTP/2 gRPC call with node:http2 (no grpc-js): returns the response messages as
 * {compressed, body} with the body inflated when the flag says so, plus the response headers
 * and trailers. Used only to see the per-message compressed flag grpc-js hides. */
function rawCall(method, reqBytes) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${target}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': `/grpc.testing.TestService/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'gzip',
    });
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(reqBytes.length, 1);
    stream.end(Buffer.concat([frame, reqBytes]));
    const chunks = [];
    let headers, trailers;
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c) => chunks.push(c));
    stream.on('error', reject);
    stream.on('end', () => {
      session.close();
      const body = Buffer.concat(chunks);
      const messages = [];
      for (let i = 0; i + 5 <= body.length; ) {
        const compressed = body[i] === 1;
        const n = body.readUInt32BE(i + 1);
        const bytes = body.subarray(i + 5, i + 5 + n);
        messages.push({ compressed, body: compressed ? zlib.gunzipSync(bytes) : bytes });
        i += 5 + n;
      }
      resolve({ headers, trailers, messages });
    });
  });
}

const serialize = (method, obj) =>
  definition['grpc.testing.TestService'][method].requestSerialize(obj);
const deserialize = (method, bytes) =>
  definition['grpc.testing.TestService'][method].responseDeserialize(bytes);

const cases = {
  async empty_unary() {
    const { res } = await unary(plain, 'EmptyCall', {});
    assert.deepEqual(res, {});
  },

  async large_unary() {
    const { res } = await unary(plain, 'UnaryCall', {
      response_type: 'COMPRESSABLE',
      response_size: 314159,
      payload: { body: zeros(271828) },
    });
    assert.equal(res.payload.type, 'COMPRESSABLE');
    assert.ok(res.payload.body.equals(zeros(314159)), 'payload is 314159 zero bytes');
  },

  async client_compressed_unary() {
    const req = (expect) => ({
      response_size: 314159,
      payload: { body: zeros(271828) },
      expect_compressed: { value: expect },
    });
    // The probe: claims compression but arrives plain, so a server that checks must refuse.
    const probe = await unary(plain, 'UnaryCall', req(true)).catch((e) => e);
    assertStatus(probe, grpc.status.INVALID_ARGUMENT);
    const { res } = await unary(gzip, 'UnaryCall', req(true));
    assert.equal(res.payload.body.length, 314159);
    const second = await unary(plain, 'UnaryCall', req(false));
    assert.equal(second.res.payload.body.length, 314159);
  },

  async server_compressed_unary() {
    for (const value of [true, false]) {
      const req = { response_size: 314159, payload: { body: zeros(271828) },
        response_compressed: { value } };
      const { res } = await unary(plain, 'UnaryCall', req);
      assert.ok(res.payload.body.equals(zeros(314159)), `payload (compressed=${value})`);
      const raw = await rawCall('UnaryCall', serialize('UnaryCall', req));
      assert.equal(raw.trailers['grpc-status'], '0');
      assert.equal(raw.messages.length, 1);
      assert.equal(raw.messages[0].compressed, value, `compressed flag (asked ${value})`);
      assert.equal(deserialize('UnaryCall', raw.messages[0].body).payload.body.length, 314159);
    }
  },

  async client_streaming() {
    const { err, res } = await clientStream(plain, 'StreamingInputCall', (call) => {
      for (const n of [27182, 8, 1828, 45904]) call.write({ payload: { body: zeros(n) } });
    });
    assert.ifError(err);
    assert.equal(res.aggregated_payload_size, 74922);
  },

  async client_compressed_streaming() {
    // The probe: the first message claims compression but goes plain.
    const probe = await clientStream(gzip, 'StreamingInputCall', (call) =>
      call.write({ payload: { body: zeros(27182) }, expect_compressed: { value: true } },
        NO_COMPRESS),
    );
    assertStatus(probe.err, grpc.status.INVALID_ARGUMENT);
    // Then one message compressed and one not, on the same call, each saying which it is.
    const { err, res } = await clientStream(gzip, 'StreamingInputCall', (call) => {
      call.write({ payload: { body: zeros(27182) }, expect_compressed: { value: true } });
      call.write({ payload: { body: zeros(45904) }, expect_compressed: { value: false } },
        NO_COMPRESS);
    });
    assert.ifError(err);
    assert.equal(res.aggregated_payload_size, 73086);
  },

  async server_streaming() {
    const sizes = [31415, 9, 2653, 58979];
    const call = plain.StreamingOutputCall(
      { response_type: 'COMPRESSABLE', response_parameters: sizes.map((size) => ({ size })) },
      { deadline: deadline() },
    );
    const { messages, status } = await drain(call);
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(messages.map((m) => m.payload.body.length), sizes);
    assert.ok(messages.every((m) => m.payload.type === 'COMPRESSABLE'));
  },

  async server_compressed_streaming() {
    const req = { response_parameters: [
      { compressed: { value: true }, size: 31415 },
      { compressed: { value: false }, size: 92653 },
    ] };
    const { messages, status } = await drain(plain.StreamingOutputCall(req,
      { deadline: deadline() }));
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(messages.map((m) => m.payload.body.length), [31415, 92653]);
    const raw = await rawCall('StreamingOutputCall', serialize('StreamingOutputCall', req));
    assert.equal(raw.trailers['grpc-status'], '0');
    assert.deepEqual(raw.messages.map((m) => m.compressed), [true, false], 'compressed flags');
    assert.deepEqual(raw.messages.map((m) =>
      deserialize('StreamingOutputCall', m.body).payload.body.length), [31415, 92653]);
  },

  async ping_pong() {
    const responses = [31415, 9, 2653, 58979];
    const payloads = [27182, 8, 1828, 45904];
    const call = plain.FullDuplexCall({ deadline: deadline() });
    const got = [];
    const done = drain(call);
    // Lock-step: each request goes out only after the previous response came back.
    await new Promise((resolve, reject) => {
      const send = (i) => call.write({ response_type: 'COMPRESSABLE',
        response_parameters: [{ size: responses[i] }], payload: { body: zeros(payloads[i]) } });
      call.on('data', (m) => {
        got.push(m.payload.body.length);
        if (got.length < responses.length) send(got.length);
        else resolve(call.end());
      });
      call.on('status', (st) => st.code !== grpc.status.OK && reject(new Error(st.details)));
      send(0);
    });
    const { status } = await done;
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(got, responses);
  },

  async empty_stream() {
    const call = plain.FullDuplexCall({ deadline: deadline() });
    call.end();
    const { messages, status } = await drain(call);
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(messages, []);
  },

  async timeout_on_sleeping_server() {
    const call = plain.FullDuplexCall({ deadline: deadline(1) });
    call.write({ payload: { body: zeros(27182) } });
    const { status } = await drain(call);
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED, status.details);
  },

  async cancel_after_begin() {
    // Cancelled once the call is under way (its HTTP/2 stream open), so that the server sees
    // the RST_STREAM. grpc-js cancelled in the same tick as the call was made still opens the
    // stream afterwards and leaves it open until the server's deadline ends it.
    const { err } = await clientStream(plain, 'StreamingInputCall',
      (call) => setTimeout(() => call.cancel(), 20), { end: false });
    assertStatus(err, grpc.status.CANCELLED);
    // The server is still fine.
    assert.deepEqual((await unary(plain, 'EmptyCall', {})).res, {});
  },

  async cancel_after_first_response() {
    const call = plain.FullDuplexCall({ deadline: deadline() });
    const done = drain(call);
    call.write({ response_type: 'COMPRESSABLE', response_parameters: [{ size: 31415 }],
      payload: { body: zeros(27182) } });
    call.once('data', () => call.cancel());
    const { messages, status } = await done;
    assert.equal(status.code, grpc.status.CANCELLED, status.details);
    assert.equal(messages[0].payload.body.length, 31415);
  },

  async custom_metadata() {
    const md = () => {
      const m = new grpc.Metadata();
      m.set(ECHO_INITIAL, 'test_initial_metadata_value');
      m.set(ECHO_TRAILING, Buffer.from('ababab', 'hex'));
      return m;
    };
    const check = (headers, trailers, what) => {
      assert.deepEqual(headers.get(ECHO_INITIAL), ['test_initial_metadata_value'],
        `${what}: initial metadata`);
      const t = trailers.get(ECHO_TRAILING);
      assert.equal(t.length, 1, `${what}: one trailing value`);
      assert.equal(t[0].toString('hex'), 'ababab', `${what}: trailing metadata`);
    };
    const u = await unary(plain, 'UnaryCall',
      { response_size: 314159, payload: { body: zeros(271828) } }, { metadata: md() });
    assert.equal(u.res.payload.body.length, 314159);
    check(u.headers, u.trailers, 'UnaryCall');

    const call = plain.FullDuplexCall(md(), { deadline: deadline() });
    const done = drain(call);
    call.write({ response_parameters: [{ size: 314159 }], payload: { body: zeros(271828) } });
    call.end();
    const d = await done;
    assert.equal(d.status.code, grpc.status.OK, d.status.details);
    assert.deepEqual(d.messages.map((m) => m.payload.body.length), [314159]);
    check(d.headers, d.status.metadata, 'FullDuplexCall');
  },

  async status_code_and_message() {
    await checkStatus('test status message', true);
  },

  async special_status_message() {
    await checkStatus(SPECIAL, false);
  },

  async unimplemented_method() {
    const err = await unary(plain, 'UnimplementedCall', {}).catch((e) => e);
    assertStatus(err, grpc.status.UNIMPLEMENTED);
  },

  // Not one of the interop description's cases: client_compressed_unary and _streaming with
  // gRPC's other standard encoding, "deflate" (a zlib stream), which grpc-js can be set to use.
  async client_compressed_deflate() {
    const { res } = await unary(deflate, 'UnaryCall', { response_size: 314159,
      payload: { body: zeros(271828) }, expect_compressed: { value: true } });
    assert.equal(res.payload.body.length, 314159);
    const { err, res: sum } = await clientStream(deflate, 'StreamingInputCall', (call) => {
      call.write({ payload: { body: zeros(27182) }, expect_compressed: { value: true } });
      call.write({ payload: { body: zeros(45904) }, expect_compressed: { value: false } },
        NO_COMPRESS);
    });
    assert.ifError(err);
    assert.equal(sum.aggregated_payload_size, 73086);
  },

  async unimplemented_service() {
    const err = await unary(unimplemented, 'UnimplementedCall', {}).catch((e) => e);
    assertStatus(err, grpc.status.UNIMPLEMENTED);
  },
};

/** UnaryCall (and, for status_code_and_message, FullDuplexCall) asked to fail with code 2 and
 * message: the client must see exactly that code and message. */
async function checkStatus(message, duplex) {
  const response_status = { code: 2, message };
  const err = await unary(plain, 'UnaryCall', { response_status }).catch((e) => e);
  assertStatus(err, grpc.status.UNKNOWN, message);
  if (!duplex) return;
  const call = plain.FullDuplexCall({ deadline: deadline() });
  const done = drain(call);
  call.write({ response_status });
  call.end();
  const { status } = await done;
  assert.equal(status.code, grpc.status.UNKNOWN);
  assert.equal(status.details, message);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const names = only.length ? only : Object.keys(cases);
let failed = 0;
for (const name of names) {
  const started = Date.now();
  const result = { case: name };
  try {
    if (!cases[name]) throw new Error(`no such case: ${name}`);
    await withTimeout(cases[name](), CASE_MS + 2000, name);
    result.ok = true;
  } catch (e) {
    result.ok = false;
    result.error = String(e && e.stack ? e.stack : e);
    failed++;
  }
  result.ms = Date.now() - started;
  console.log(JSON.stringify(result));
}
for (const c of [plain, gzip, deflate, unimplemented]) c.close();
// Exit now: a call a case left behind must not keep the process alive (each case already had
// its own time limit).
process.exit(failed ? 1 : 0);
