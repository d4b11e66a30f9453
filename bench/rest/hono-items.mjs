// Hono peer for bench/rest/run.sh: the two items routes of examples/items (GET /items/{id},
// POST /items) over an in-memory Map, on @hono/node-server. One Node process (single-threaded
// event loop), as people deploy it by default.
//
//   node bench/rest/hono-items.mjs PORT        (listens on 127.0.0.1:PORT)
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const port = Number(process.argv[2] || process.env.PORT || 8080);
const items = new Map();
let nextId = 1;

const app = new Hono();

app.get('/items/:id', (c) => {
  const id = Number(c.req.param('id'));
  const item = Number.isInteger(id) ? items.get(id) : undefined;
  if (!item) return c.json({ code: 5, message: `item ${c.req.param('id')} not found` }, 404);
  return c.json(item);
});

app.post('/items', async (c) => {
  let body;
  try {
    body = await c.req.json();
  } catch {
    return c.json({ code: 3, message: 'body: invalid JSON' }, 400);
  }
  if (!body || typeof body.name !== 'string' || body.name === '')
    return c.json({ code: 3, message: 'name: must not be empty' }, 400);
  const price = body.price === undefined ? 0 : body.price;
  if (typeof price !== 'number') return c.json({ code: 3, message: 'price: must be a number' }, 400);
  const item = { id: nextId++, name: body.name, price };
  items.set(item.id, item);
  return c.json(item, 201);
});

const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
