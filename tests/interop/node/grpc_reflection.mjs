// A reflection client on @grpc/grpc-js: it loads switchboard's reflection protocol
// (grpc.reflection.v1, from src/protocols/grpc/proto/reflection.proto.in, the template the
// server is built from) with @grpc/proto-loader, lists the services, fetches the file
// descriptors that define items.v1.ItemService and every file they import, turns them into a
// FileDescriptorSet, and calls GetItem with a client built from that set alone: no items.proto.
//
// Usage: node grpc_reflection.mjs <host:port> <item-id>
// Prints one JSON line {services, files, item} or {error}; exits 1 on error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const template = path.resolve(here, '..', '..', '..', 'src', 'protocols', 'grpc', 'proto',
  'reflection.proto.in');
const [target, itemId] = process.argv.slice(2);
if (!target || !itemId) {
  console.error('usage: node grpc_reflection.mjs <host:port> <item-id>');
  process.exit(2);
}
const CALL_MS = 10000;

/** Reads a varint at buf[i]; returns [value, next index]. */
function varint(buf, i) {
  let v = 0;
  for (let shift = 0; ; shift += 7) {
    if (i >= buf.length) throw new Error('truncated varint');
    const b = buf[i++];
    v += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) return [v, i];
  }
}

/** The name (field 1) and dependencies (field 3) of a serialized FileDescriptorProto. */
function fileInfo(buf) {
  const out = { name: '', deps: [] };
  for (let i = 0; i < buf.length; ) {
    let key, len;
    [key, i] = varint(buf, i);
    const wire = key & 7;
    if (wire === 0) [, i] = varint(buf, i);
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      [len, i] = varint(buf, i);
      const field = key >>> 3;
      if (field === 1) out.name = buf.toString('utf8', i, i + len);
      if (field === 3) out.deps.push(buf.toString('utf8', i, i + len));
      i += len;
    } else throw new Error(`wire type ${wire} in a FileDescriptorProto`);
  }
  return out;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-reflection-'));
const result = {};
try {
  const proto = path.join(dir, 'reflection.proto');
  writeFileSync(proto, readFileSync(template, 'utf8').replaceAll('@SB_REFLECTION_VERSION@', 'v1'));
  const reflection = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { keepCase: true }))
    .grpc.reflection.v1;
  const stub = new reflection.ServerReflection(target, grpc.credentials.createInsecure());

  /** Sends the requests on one ServerReflectionInfo stream; resolves the responses. */
  const ask = (requests) => new Promise((resolve, reject) => {
    const call = stub.ServerReflectionInfo({ deadline: Date.now() + CALL_MS });
    const responses = [];
    call.on('data', (r) => responses.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
    for (const r of requests) call.write(r);
    call.end();
  });

  const [listed] = await ask([{ list_services: '' }]);
  result.services = listed.list_services_response.service.map((s) => s.name).sort();

  // The file defining the service, then whatever it imports that the answers did not carry.
  const files = new Map(); // name -> serialized FileDescriptorProto
  const take = (responses) => {
    for (const r of responses) {
      if (r.error_response) throw new Error(`reflection error ${r.error_response.error_code}: ` +
        r.error_response.error_message);
      for (const b of r.file_descriptor_response.file_descriptor_proto)
        files.set(fileInfo(b).name, b);
    }
  };
  take(await ask([{ file_containing_symbol: 'items.v1.ItemService' }]));
  for (;;) {
    const missing = new Set();
    for (const b of files.values())
      for (const d of fileInfo(b).deps) if (!files.has(d)) missing.add(d);
    if (missing.size === 0) break;
    take(await ask([...missing].map((name) => ({ file_by_filename: name }))));
    for (const name of missing)
      if (!files.has(name)) throw new Error(`the server did not send ${name}`);
  }
  result.files = [...files.keys()].sort();

  // FileDescriptorSet: field 1, one length-delimited FileDescriptorProto per file.
  const parts = [];
  for (const b of files.values()) {
    const len = [];
    for (let n = b.length; ; n = Math.floor(n / 128)) {
      len.push(n >= 128 ? (n % 128) | 0x80 : n);
      if (n < 128) break;
    }
    parts.push(Buffer.from([0x0a, ...len]), b);
  }
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(Buffer.concat(parts),
    { keepCase: true, longs: Number });
  const { ItemService } = grpc.loadPackageDefinition(definition).items.v1;
  const client = new ItemService(target, grpc.credentials.createInsecure());
  result.item = await new Promise((resolve, reject) =>
    client.GetItem({ id: Number(itemId) }, { deadline: Date.now() + CALL_MS },
      (err, res) => (err ? reject(err) : resolve(res))));
  result.methods = Object.keys(ItemService.service).sort();
  client.close();
  stub.close();
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
