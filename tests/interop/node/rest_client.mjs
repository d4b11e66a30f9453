// @ts-check
// A client generated from the served /openapi.json: openapi-typescript turns the document into
// the module 'items-openapi' (a .d.ts the test writes; its tsconfig maps the name to it), and
// openapi-fetch makes typed calls from it. `tsc --noEmit` checks this file (checkJs, strict)
// before Node runs it, so a contract change that breaks the client fails the type check.
//
// Usage: node rest_client.mjs <base-url>
// Prints one JSON line {checks, failures}; exits 1 when any check failed.
import createClient from 'openapi-fetch';

/** @typedef {import('items-openapi').paths} Paths */
/** @typedef {import('items-openapi').components['schemas']['items.v1.Item']} Item */
/** @typedef {import('items-openapi').components['schemas']['Error']} ApiError */

const base = process.argv[2];
if (!base) {
  console.error('usage: node rest_client.mjs <base-url>');
  process.exit(2);
}

/** @type {import('openapi-fetch').Client<Paths>} */
const client = createClient({ baseUrl: base });

/** @type {string[]} */
const failures = [];
let checks = 0;
/** @param {boolean} ok @param {string} what @param {unknown} got */
function check(ok, what, got) {
  checks++;
  if (!ok) failures.push(`${what}: got ${JSON.stringify(got)}`);
}

// CreateItem: POST /items answers 201 with the stored item.
const name = `typed-${Date.now()}`;
const created = await client.POST('/items', { body: { name, price: 12.5 } });
check(created.response.status === 201, 'POST /items status', created.response.status);
/** @type {Item | undefined} */
const item = created.data;
check(!!item && typeof item.id === 'number' && item.id > 0, 'created id', item);
check(item?.name === name && item?.price === 12.5, 'created fields', item);
const id = item?.id ?? 0;

// GetItem: GET /items/{id} gives the same item back.
const got = await client.GET('/items/{id}', { params: { path: { id } } });
check(got.response.status === 200, 'GET /items/{id} status', got.response.status);
check(JSON.stringify(got.data) === JSON.stringify(item), 'GET /items/{id} body', got.data);

// ListItems: GET /items with a typed query parameter lists it.
const list = await client.GET('/items', { params: { query: { pageSize: 100 } } });
check(list.response.status === 200, 'GET /items status', list.response.status);
check(!!list.data?.items?.some((x) => x.id === id && x.name === name), 'item listed', list.data);

// An absent item: 404 with the error model's body, typed as the document's Error schema.
const missing = await client.GET('/items/{id}', { params: { path: { id: 4000000 } } });
check(missing.response.status === 404, 'GET absent status', missing.response.status);
check(missing.data === undefined, 'GET absent data', missing.data);
/** @type {ApiError | undefined} */
const err = missing.error;
check(err?.code === 5, 'error code (NOT_FOUND)', err);
check(typeof err?.message === 'string' && err.message.includes('4000000'), 'error message', err);
check(Array.isArray(err?.details) && err.details.length === 0, 'error details', err);

// Compile-time only (never called): the generated types reject what the contract does not
// allow. Were the types loose (any), each @ts-expect-error would itself be an error.
// eslint-disable-next-line no-unused-vars
async function rejectedByTheTypes() {
  // @ts-expect-error: no such path in the contract
  await client.GET('/no/such/path');
  // @ts-expect-error: price is a double, not a string
  await client.POST('/items', { body: { name: 'x', price: '12.5' } });
  // @ts-expect-error: the path parameter id is required
  await client.GET('/items/{id}', { params: { path: {} } });
}

console.log(JSON.stringify({ checks, failures }));
if (failures.length) process.exitCode = 1;
