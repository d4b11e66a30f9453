// A stock @trpc/client v11 against the items example, typed by the AppRouter that
// protoc-gen-switchboard generated from items.proto (the module 'items-trpc': the test maps it
// to build/.../items.trpc.d.ts). tests/interop/test_trpc_client.py type-checks this file with
// `tsc --noEmit`, transpiles it with esbuild and runs it with Node (with EventSource enabled).
//
// Usage: node trpc_client.mjs <base-url>      (base-url: http://127.0.0.1:<port>/trpc)
// Prints one JSON line {checks, failures}; exits 1 when any check failed.
import {
  createTRPCClient,
  httpBatchLink,
  httpBatchStreamLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
} from '@trpc/client';
import type { AppRouter, Item } from 'items-trpc';

const url = process.argv[2];
if (!url) {
  console.error('usage: node trpc_client.mjs <base-url>');
  process.exit(2);
}

const failures: string[] = [];
let checks = 0;
function check(ok: boolean, what: string, got: unknown) {
  checks++;
  if (!ok) failures.push(`${what}: got ${JSON.stringify(got)}`);
}

/** The error a rejected call ends with, or undefined when it resolved. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e;
  }
}

function isClientError(e: unknown): e is TRPCClientError<AppRouter> {
  return e instanceof TRPCClientError;
}

// The canonical client: one batching link.
const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url })] });

const name = `trpc-${Date.now()}`;
const created: Item = await trpc.createItem.mutate({ name, price: 12.5 });
check(typeof created.id === 'number' && created.id > 0, 'createItem id', created);
check(created.name === name && created.price === 12.5, 'createItem fields', created);
const id = created.id ?? 0;

const got = await trpc.getItem.query({ id });
check(JSON.stringify(got) === JSON.stringify(created), 'getItem', got);

// Two queries in one tick: httpBatchLink sends them as one request, answered in order.
const [a, b] = await Promise.all([trpc.getItem.query({ id }), trpc.listItems.query({ pageSize: 1000 })]);
check(a.id === id, 'batched getItem', a);
check(!!b.items?.some((x) => x.id === id), 'batched listItems', b);

// Errors are TRPCClientError with tRPC's code names, mapped from the handler's gRPC codes.
const missing = await failure(trpc.getItem.query({ id: 4000000 }));
check(isClientError(missing), 'missing item is a TRPCClientError', String(missing));
if (isClientError(missing)) {
  check(missing.data?.code === 'NOT_FOUND', 'missing data.code', missing.data);
  check(missing.data?.httpStatus === 404, 'missing data.httpStatus', missing.data);
  check(missing.data?.path === 'getItem', 'missing data.path', missing.data);
  check(missing.shape?.code === -32004, 'missing shape.code', missing.shape);
  check(missing.message.includes('4000000'), 'missing message', missing.message);
}
// The contract's validation rules (name: min_len 1; price: gte 0) answer BAD_REQUEST.
const invalid = await failure(trpc.createItem.mutate({ name: '', price: -1 }));
check(isClientError(invalid) && invalid.data?.code === 'BAD_REQUEST', 'invalid create', invalid);
// One bad call in a batch does not spoil the others (status 207 on the wire).
const mixed = await Promise.allSettled([trpc.getItem.query({ id }), trpc.getItem.query({ id: 4000001 })]);
check(mixed[0].status === 'fulfilled', 'mixed batch: good call', mixed[0]);
check(
  mixed[1].status === 'rejected' && isClientError(mixed[1].reason) && mixed[1].reason.data?.code === 'NOT_FOUND',
  'mixed batch: bad call',
  mixed[1],
);

// httpLink: one request per call (GET ?input= for queries, POST for mutations).
const single = createTRPCClient<AppRouter>({ links: [httpLink({ url })] });
const second = await single.createItem.mutate({ name: `${name}-2`, price: 3 });
check(second.id === id + 1 || (second.id ?? 0) > id, 'httpLink createItem', second);
check((await single.getItem.query({ id: second.id })).name === `${name}-2`, 'httpLink getItem', second);
const updated = await single.updateItem.mutate({ item: { id: second.id, price: 4 }, updateMask: 'price' });
check(updated.price === 4 && updated.name === `${name}-2`, 'httpLink updateItem', updated);
const gone = await failure(single.getItem.query({ id: 4000002 }));
check(isClientError(gone) && gone.data?.code === 'NOT_FOUND', 'httpLink NOT_FOUND', gone);

// httpBatchStreamLink: the batch answered as JSONL, each call resolving as it arrives.
const stream = createTRPCClient<AppRouter>({ links: [httpBatchStreamLink({ url })] });
const streamed = await Promise.allSettled([
  stream.getItem.query({ id }),
  stream.getItem.query({ id: second.id }),
  stream.getItem.query({ id: 4000003 }),
]);
check(streamed[0].status === 'fulfilled' && streamed[0].value.id === id, 'stream call 0', streamed[0]);
check(
  streamed[1].status === 'fulfilled' && streamed[1].value.id === second.id,
  'stream call 1',
  streamed[1],
);
check(
  streamed[2].status === 'rejected' && isClientError(streamed[2].reason) && streamed[2].reason.data?.code === 'NOT_FOUND',
  'stream call 2 (error)',
  streamed[2],
);

// httpSubscriptionLink (Server-Sent Events) for subscriptions, batching for the rest.
const live = createTRPCClient<AppRouter>({
  links: [
    splitLink({
      condition: (op) => op.type === 'subscription',
      true: httpSubscriptionLink({ url }),
      false: httpBatchLink({ url }),
    }),
  ],
});
type Event = { id: string; data: { item?: Item; deleted?: boolean } };
async function collect(input: { sinceId?: number; lastEventId?: string }) {
  return await new Promise<{ events: Event[]; error?: unknown }>((resolve) => {
    const events: Event[] = [];
    const timer = setTimeout(() => {
      sub.unsubscribe();
      resolve({ events, error: 'timeout: the stream did not end' });
    }, 10000);
    const sub = live.watchItems.subscribe(input, {
      onData: (ev) => events.push(ev),
      onError: (error) => {
        clearTimeout(timer);
        resolve({ events, error });
      },
      onComplete: () => {
        clearTimeout(timer);
        resolve({ events });
      },
    });
  });
}
const all = await collect({ sinceId: id - 1 });
check(all.error === undefined, 'subscription ends cleanly', String(all.error));
check(all.events.length === 2, 'subscription events', all.events);
check(all.events[0]?.data.item?.name === name && all.events[0]?.id === String(id), 'first event', all.events[0]);
check(all.events[1]?.data.item?.id === second.id, 'second event', all.events[1]);
// Resuming: lastEventId (what the link sends after a reconnect) skips what was seen.
const resumed = await collect({ sinceId: id - 1, lastEventId: String(id) });
check(resumed.error === undefined && resumed.events.length === 1, 'resumed subscription', resumed.events);
check(resumed.events[0]?.data.item?.id === second.id, 'resumed event', resumed.events[0]);
// A subscription whose input the contract rejects fails with the error, not a hang.
const badSub = await new Promise<unknown>((resolve) => {
  const sub = live.watchItems.subscribe(
    // @ts-expect-error: sinceId is a uint32; the server must reject it at run time too
    { sinceId: 'x' },
    { onData: () => resolve('data'), onError: (e) => resolve(e), onComplete: () => resolve('complete') },
  );
  setTimeout(() => {
    sub.unsubscribe();
    resolve('timeout');
  }, 10000);
});
check(isClientError(badSub) && badSub.data?.code === 'BAD_REQUEST', 'bad subscription input', String(badSub));

// Cleanup through a mutation returning google.protobuf.Empty.
const deleted = await trpc.deleteItem.mutate({ id: second.id });
check(JSON.stringify(deleted) === '{}', 'deleteItem', deleted);

console.log(JSON.stringify({ checks, failures }));
// Exit now rather than when fetch's idle keep-alive sockets time out.
process.exit(failures.length ? 1 : 0);
