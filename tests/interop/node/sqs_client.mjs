// @ts-check
// The SQS flows of tests/interop/test_sqs_boto3.py through @aws-sdk/client-sqs v3, which
// speaks AWS JSON 1.0 (X-Amz-Target, awsQueryCompatible errors): a producer and a consumer
// loop, a poison message through the dead-letter queue and back by StartMessageMoveTask,
// FIFO order within groups and deduplication, long polling, and bad input mapped to the SDK's
// exception classes. The SDK checks MD5OfMessageBody itself on send and receive.
//
// Usage: node sqs_client.mjs <endpoint-url>
// Prints one JSON line {checks, failures}; exits 1 when any check failed.
import {
  SQSClient,
  CreateQueueCommand,
  GetQueueUrlCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SendMessageBatchCommand,
  ReceiveMessageCommand,
  DeleteMessageCommand,
  DeleteMessageBatchCommand,
  ChangeMessageVisibilityCommand,
  ListQueuesCommand,
  ListDeadLetterSourceQueuesCommand,
  StartMessageMoveTaskCommand,
  ListMessageMoveTasksCommand,
  TagQueueCommand,
  AddPermissionCommand,
  RemovePermissionCommand,
  ListQueueTagsCommand,
  QueueDoesNotExist,
  BatchEntryIdsNotDistinct,
  TooManyEntriesInBatchRequest,
  ReceiptHandleIsInvalid,
  InvalidAttributeName,
  QueueNameExists,
} from '@aws-sdk/client-sqs';

const endpoint = process.argv[2];
if (!endpoint) {
  console.error('usage: node sqs_client.mjs <endpoint-url>');
  process.exit(2);
}
const sqs = new SQSClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'dummy-secret' },
});

/** @type {string[]} */
const failures = [];
let checks = 0;
/** @param {boolean} ok @param {string} what @param {unknown} [got] */
function check(ok, what, got) {
  checks++;
  if (!ok) failures.push(`${what}: got ${JSON.stringify(got)}`);
}
/** @param {() => Promise<unknown>} fn @param {Function} cls @param {string} what */
async function expectError(fn, cls, what) {
  try {
    await fn();
    check(false, `${what}: no error`);
  } catch (e) {
    check(e instanceof cls, `${what}: exception class`, /** @type {any} */ (e)?.name);
  }
}
/** @param {string} code @param {() => Promise<unknown>} fn @param {string} what */
async function expectCode(code, fn, what) {
  try {
    await fn();
    check(false, `${what}: no error`);
  } catch (e) {
    const err = /** @type {any} */ (e);
    check(err?.name === code || err?.Code === code, `${what}: error code`, [err?.name, err?.Code]);
  }
}

// Producer and consumer loop.
const { QueueUrl: orders } = await sqs.send(new CreateQueueCommand({ QueueName: 'js-orders' }));
check(orders === `${endpoint}/000000000000/js-orders`, 'queue url', orders);
if (!orders) throw new Error('no queue url');
for (let i = 0; i < 12; i++) {
  await sqs.send(new SendMessageCommand({
    QueueUrl: orders,
    MessageBody: JSON.stringify({ type: 'order.created', orderId: `o-${i}`, total: i * 2.5 }),
    MessageAttributes: { source: { DataType: 'String', StringValue: 'web' } },
  }));
}
const seen = new Set();
for (let round = 0; round < 20 && seen.size < 12; round++) {
  const r = await sqs.send(new ReceiveMessageCommand({
    QueueUrl: orders, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'],
  }));
  for (const m of r.Messages ?? []) {
    const ev = JSON.parse(m.Body ?? '{}');
    seen.add(ev.orderId);
    check(m.MessageAttributes?.source?.StringValue === 'web', 'attribute', m.MessageAttributes);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: orders, ReceiptHandle: m.ReceiptHandle }));
  }
}
check(seen.size === 12, 'consumed all', seen.size);
const depth = await sqs.send(new GetQueueAttributesCommand({
  QueueUrl: orders, AttributeNames: ['ApproximateNumberOfMessages'],
}));
check(depth.Attributes?.ApproximateNumberOfMessages === '0', 'empty after consume', depth.Attributes);

// Poison message -> DLQ -> StartMessageMoveTask.
const { QueueUrl: dlq } = await sqs.send(new CreateQueueCommand({ QueueName: 'js-dlq' }));
const dlqArn = (await sqs.send(new GetQueueAttributesCommand({
  QueueUrl: dlq, AttributeNames: ['QueueArn'],
}))).Attributes?.QueueArn;
check(dlqArn === 'arn:aws:sqs:us-east-1:000000000000:js-dlq', 'dlq arn', dlqArn);
const { QueueUrl: work } = await sqs.send(new CreateQueueCommand({
  QueueName: 'js-work',
  Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 }) },
}));
const srcs = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }));
check(srcs.queueUrls?.[0] === work, 'dlq sources', srcs.queueUrls);
const bin = new Uint8Array([0, 1, 2, 250, 255]);
const sent = await sqs.send(new SendMessageCommand({
  QueueUrl: work, MessageBody: 'poison \u00e9',
  MessageAttributes: { blob: { DataType: 'Binary', BinaryValue: bin } },
}));
const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: work, VisibilityTimeout: 0 }));
check(first.Messages?.length === 1, 'first receive', first.Messages?.length);
const none = await sqs.send(new ReceiveMessageCommand({ QueueUrl: work, WaitTimeSeconds: 1 }));
check(!none.Messages?.length, 'dead-lettered after maxReceiveCount', none.Messages);
const dead = await sqs.send(new ReceiveMessageCommand({
  QueueUrl: dlq, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'],
  WaitTimeSeconds: 2, VisibilityTimeout: 0,
}));
const dm = dead.Messages?.[0];
check(dm?.MessageId === sent.MessageId && dm?.Body === 'poison \u00e9', 'dlq message', dm);
check(JSON.stringify(Array.from(dm?.MessageAttributes?.blob?.BinaryValue ?? [])) ===
  JSON.stringify(Array.from(bin)), 'binary attribute byte-identical', dm?.MessageAttributes);
check(dm?.MD5OfMessageAttributes === sent.MD5OfMessageAttributes, 'attribute md5', dm);
const task = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn }));
check(!!task.TaskHandle, 'task handle', task);
let status = 'RUNNING';
for (let i = 0; i < 100 && status === 'RUNNING'; i++) {
  const l = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }));
  status = l.Results?.[0]?.Status ?? 'none';
  if (status === 'RUNNING') await new Promise((res) => setTimeout(res, 100));
}
check(status === 'COMPLETED', 'move task completed', status);
const back = await sqs.send(new ReceiveMessageCommand({ QueueUrl: work, WaitTimeSeconds: 2 }));
check(back.Messages?.[0]?.MessageId === sent.MessageId, 'redriven to source', back.Messages);

// FIFO order within groups and deduplication.
const { QueueUrl: fifo } = await sqs.send(new CreateQueueCommand({
  QueueName: 'js-jobs.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
}));
const batch = await sqs.send(new SendMessageBatchCommand({
  QueueUrl: fifo,
  Entries: ['a1', 'b1', 'a2', 'b2', 'a3', 'a1'].map((b, i) => ({
    Id: `e${i}`, MessageBody: b, MessageGroupId: b[0],
  })),
}));
check(batch.Successful?.length === 6, 'fifo batch', batch);
check(batch.Successful?.[5]?.MessageId === batch.Successful?.[0]?.MessageId, 'content dedup', batch);
/** @type {string[]} */
const order = [];
for (let round = 0; round < 10 && order.length < 5; round++) {
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: fifo, MaxNumberOfMessages: 10 }));
  for (const m of r.Messages ?? []) {
    order.push(m.Body ?? '');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: fifo, ReceiptHandle: m.ReceiptHandle }));
  }
}
check(order.filter((b) => b[0] === 'a').join() === 'a1,a2,a3', 'group a order', order);
check(order.filter((b) => b[0] === 'b').join() === 'b1,b2', 'group b order', order);

// Long polling returns as soon as a message arrives.
const { QueueUrl: poll } = await sqs.send(new CreateQueueCommand({ QueueName: 'js-poll' }));
const t0 = Date.now();
setTimeout(() => {
  sqs.send(new SendMessageCommand({ QueueUrl: poll, MessageBody: 'wake' })).catch(() => {});
}, 800);
const polled = await sqs.send(new ReceiveMessageCommand({ QueueUrl: poll, WaitTimeSeconds: 10 }));
const took = Date.now() - t0;
check(polled.Messages?.[0]?.Body === 'wake' && took >= 600 && took < 5000, 'long poll', took);

// Tags and listing.
await sqs.send(new TagQueueCommand({ QueueUrl: poll, Tags: { team: 'core' } }));
const tags = await sqs.send(new ListQueueTagsCommand({ QueueUrl: poll }));
check(tags.Tags?.team === 'core', 'tags', tags.Tags);
const lq = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'js-', MaxResults: 2 }));
check(lq.QueueUrls?.length === 2 && !!lq.NextToken, 'list page', lq);

// Bad input: the SDK's exception classes.
await expectError(() => sqs.send(new GetQueueUrlCommand({ QueueName: 'absent' })),
  QueueDoesNotExist, 'missing queue');
await expectError(() => sqs.send(new SendMessageBatchCommand({
  QueueUrl: poll, Entries: [{ Id: 'x', MessageBody: '1' }, { Id: 'x', MessageBody: '2' }],
})), BatchEntryIdsNotDistinct, 'duplicate ids');
await expectError(() => sqs.send(new SendMessageBatchCommand({
  QueueUrl: poll, Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `i${i}`, MessageBody: 'x' })),
})), TooManyEntriesInBatchRequest, 'too many entries');
await expectError(() => sqs.send(new DeleteMessageCommand({ QueueUrl: poll, ReceiptHandle: 'junk' })),
  ReceiptHandleIsInvalid, 'bad receipt');
await expectError(() => sqs.send(new GetQueueAttributesCommand({
  QueueUrl: poll, AttributeNames: [/** @type {any} */ ('Colour')],
})), InvalidAttributeName, 'bad attribute name');
await expectError(() => sqs.send(new CreateQueueCommand({
  QueueName: 'js-poll', Attributes: { DelaySeconds: '5' },
})), QueueNameExists, 'queue exists with other attributes');
await expectCode('InvalidParameterValue', () => sqs.send(new ReceiveMessageCommand({
  QueueUrl: poll, MaxNumberOfMessages: 11,
})), 'receive max 11');
await expectCode('InvalidAttributeValue', () => sqs.send(new CreateQueueCommand({
  QueueName: 'js-bad', Attributes: { MessageRetentionPeriod: '5' },
})), 'retention out of range');
const partial = await sqs.send(new SendMessageBatchCommand({
  QueueUrl: poll,
  Entries: [{ Id: 'ok', MessageBody: 'fine' }, { Id: 'bad', MessageBody: 'x', DelaySeconds: 901 }],
}));
check(partial.Successful?.length === 1 && partial.Failed?.[0]?.Id === 'bad' &&
  partial.Failed?.[0]?.Code === 'InvalidParameterValue', 'partial batch', partial);
const vis = await sqs.send(new ReceiveMessageCommand({ QueueUrl: poll, MaxNumberOfMessages: 10 }));
const handles = (vis.Messages ?? []).map((m) => m.ReceiptHandle ?? '');
check(handles.length === 1, 'only the good entry was enqueued', handles.length);
await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: poll, ReceiptHandle: handles[0], VisibilityTimeout: 30 }));
const del = await sqs.send(new DeleteMessageBatchCommand({
  QueueUrl: poll, Entries: [{ Id: 'a', ReceiptHandle: handles[0] }, { Id: 'b', ReceiptHandle: 'junk' }],
}));
check(del.Successful?.[0]?.Id === 'a' && del.Failed?.[0]?.Code === 'ReceiptHandleIsInvalid',
  'partial delete batch', del);

// Permissions: the queue's Policy document, one statement per label.
await sqs.send(new AddPermissionCommand({
  QueueUrl: poll, Label: 'js-perm', AWSAccountIds: ['111122223333', '444455556666'],
  Actions: ['SendMessage'],
}));
/** @returns {Promise<any>} */
async function pollPolicy() {
  const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: poll, AttributeNames: ['Policy'] }));
  return a.Attributes?.Policy === undefined ? undefined : JSON.parse(a.Attributes.Policy);
}
const pol = await pollPolicy();
const st = pol?.Statement?.[0];
check(pol?.Version === '2012-10-17' && pol?.Statement?.length === 1 && st?.Sid === 'js-perm' &&
  st?.Effect === 'Allow' && st?.Action === 'SQS:SendMessage' &&
  st?.Resource === 'arn:aws:sqs:us-east-1:000000000000:js-poll' &&
  JSON.stringify(st?.Principal?.AWS) ===
    '["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]', 'policy statement', pol);
await expectCode('InvalidParameterValue', () => sqs.send(new AddPermissionCommand({
  QueueUrl: poll, Label: 'js-perm', AWSAccountIds: ['111122223333'], Actions: ['ReceiveMessage'],
})), 'duplicate label');
await sqs.send(new RemovePermissionCommand({ QueueUrl: poll, Label: 'js-perm' }));
check(await pollPolicy() === undefined, 'policy gone with its last statement', await pollPolicy());
await expectCode('InvalidParameterValue', () => sqs.send(new RemovePermissionCommand({
  QueueUrl: poll, Label: 'js-perm',
})), 'missing label');

console.log(JSON.stringify({ checks, failures }));
process.exit(failures.length ? 1 : 0);
