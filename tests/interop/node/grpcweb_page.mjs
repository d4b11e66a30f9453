// The page script of the gRPC-Web browser test: @connectrpc/connect-web's gRPC-Web transport
// with the message and service schemas protoc-gen-es generated from examples/items/items.proto
// (at test time, into the build directory; esbuild maps the import 'items-pb' to them and
// bundles everything into one script).
//
// The page is served from another origin than the server (the test's own little HTTP server),
// so every call is a cross-origin fetch: the browser sends a CORS preflight and lets the script
// see the response only when the server's CORS answers allow it.
//
// The server's URL comes in the page's query (?server=http://127.0.0.1:PORT). The outcome goes
// to window.__result, which the driver (grpcweb_browser.mjs) waits for.
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { ItemService } from 'items-pb';

const server = new URLSearchParams(location.search).get('server');
const result = { origin: location.origin, server, headers: {} };

try {
  const transport = createGrpcWebTransport({ baseUrl: server, useBinaryFormat: true });
  const client = createClient(ItemService, transport);

  // Unary: two creates, then GetItem of the second, reading the response headers too.
  const a = await client.createItem({ name: 'lamp', price: 12.5 });
  const b = await client.createItem({ name: 'desk \u263a', price: 99 });
  result.created = [a, b].map((it) => ({ id: it.id, name: it.name, price: it.price }));
  const got = await client.getItem({ id: b.id }, {
    onHeader: (h) => (result.headers.getItem = h.get('content-type')),
  });
  result.item = { id: got.id, name: got.name, price: got.price };

  // Server streaming: WatchItems sends every item after since_id, then ends.
  result.events = [];
  for await (const ev of client.watchItems({ sinceId: 0 })) {
    result.events.push({ id: ev.item?.id, name: ev.item?.name, deleted: ev.deleted });
  }

  // An error status travels in the trailers (here Trailers-Only): NOT_FOUND and its message.
  try {
    await client.getItem({ id: 4000000 });
    result.notFound = 'no error';
  } catch (e) {
    const err = ConnectError.from(e);
    result.notFound = { code: Code[err.code], message: err.rawMessage };
  }
} catch (e) {
  result.failure = String(e && e.stack ? e.stack : e);
}
window.__result = result;
