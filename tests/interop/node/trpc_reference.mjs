// The items procedures served by @trpc/server itself (standalone adapter + zod), the
// reference the C server is compared against (tests/interop/test_trpc_wire.py) and measured
// against (bench/trpc/run.sh). Same names, input rules and error codes as the contract in
// examples/items/items.proto; isDev is off, as in production, so errors carry no stack.
//
// Usage: node trpc_reference.mjs <port> [--method-override]
// Prints "listening <port>" once it accepts connections (port 0: a free one).
import { initTRPC, TRPCError, tracked } from '@trpc/server';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import { z } from 'zod';

const t = initTRPC.create({ isDev: false });

/** @type {Map<number, {id: number, name: string, price: number}>} */
const items = new Map();
let nextId = 1;

const uint32 = z.number().int().min(0).max(4294967295);
const item = z.object({ id: uint32.optional(), name: z.string().optional(), price: z.number().optional() });

function get(id) {
  const it = items.get(id ?? 0);
  if (!it) throw new TRPCError({ code: 'NOT_FOUND', message: `item ${id ?? 0} not found` });
  return it;
}

export const appRouter = t.router({
  getItem: t.procedure
    .input(z.object({ id: uint32.optional() }).optional())
    .query(({ input }) => get(input?.id)),
  createItem: t.procedure
    .input(z.object({ name: z.string().min(1).max(200), price: z.number().min(0).optional() }))
    .mutation(({ input }) => {
      const it = { id: nextId++, name: input.name, price: input.price ?? 0 };
      items.set(it.id, it);
      return it;
    }),
  listItems: t.procedure
    .input(z.object({ pageSize: uint32.max(1000).optional(), pageToken: z.string().optional() }).optional())
    .query(({ input }) => ({ items: [...items.values()].slice(0, input?.pageSize || 50) })),
  updateItem: t.procedure
    .input(z.object({ item, updateMask: z.string().optional() }))
    .mutation(({ input }) => Object.assign(get(input.item.id), input.item)),
  deleteItem: t.procedure
    .input(z.object({ id: uint32.optional() }).optional())
    .mutation(({ input }) => {
      get(input?.id);
      items.delete(input?.id ?? 0);
      return {};
    }),
  watchItems: t.procedure
    .input(z.object({ sinceId: uint32.optional(), lastEventId: z.string().optional() }).optional())
    .subscription(async function* ({ input }) {
      const since = Math.max(input?.sinceId ?? 0, Number(input?.lastEventId ?? 0));
      for (const it of items.values()) if (it.id > since) yield tracked(String(it.id), { item: it });
    }),
});

const port = Number(process.argv[2] ?? 0);
const server = createHTTPServer({
  router: appRouter,
  basePath: '/trpc/',
  allowMethodOverride: process.argv.includes('--method-override'),
});
// Exit 0 on SIGTERM (the benchmark checks every server's exit status).
process.on('SIGTERM', () => process.exit(0));
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  console.log(`listening ${typeof addr === 'object' && addr ? addr.port : port}`);
});
