// @ts-check
// The SNS fan-out through @aws-sdk/client-sns v3 (Query protocol) with
// @aws-sdk/client-sqs v3 (JSON 1.0) on the subscriber side: a topic `order-events` with three
// SQS subscribers (email, warehouse with a filter policy, analytics with raw delivery), each
// receiving what it should; PublishBatch; the SDK's exception classes for bad input.
//
// Usage: node sns_client.mjs <endpoint-url>
// Prints one JSON line {checks, failures}; exits 1 when any check failed.
import {
  SNSClient,
  CreateTopicCommand,
  SubscribeCommand,
  PublishCommand,
  PublishBatchCommand,
  ListSubscriptionsByTopicCommand,
  GetTopicAttributesCommand,
  NotFoundException,
  InvalidParameterException,
} from '@aws-sdk/client-sns';
import {
  SQSClient,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  DeleteMessageCommand,
} from '@aws-sdk/client-sqs';

const endpoint = process.argv[2];
if (!endpoint) {
  console.error('usage: node sns_client.mjs <endpoint-url>');
  process.exit(2);
}
const cfg = {
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'dummy-secret' },
};
const sns = new SNSClient(cfg);
const sqs = new SQSClient(cfg);

/** @type {string[]} */
const failures = [];
let checks = 0;
/** @param {boolean} ok @param {string} what @param {unknown} [got] */
function check(ok, what, got) {
  checks++;
  if (!ok) failures.push(`${what}: got ${JSON.stringify(got)}`);
}

/** @param {string} url @param {number} want */
async function drain(url, want) {
  /** @type {import('@aws-sdk/client-sqs').Message[]} */
  const got = [];
  for (let i = 0; i < 10 && got.length < want; i++) {
    const r = await sqs.send(new ReceiveMessageCommand({
      QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'],
    }));
    for (const m of r.Messages ?? []) {
      got.push(m);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return got;
}

const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'order-events' }));
check(TopicArn === 'arn:aws:sns:us-east-1:000000000000:order-events', 'topic arn', TopicArn);
/** @type {Record<string, string>} */
const urls = {};
for (const name of ['email', 'warehouse', 'analytics']) {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `js-${name}` }));
  urls[name] = QueueUrl ?? '';
  const arn = (await sqs.send(new GetQueueAttributesCommand({
    QueueUrl, AttributeNames: ['QueueArn'],
  }))).Attributes?.QueueArn;
  /** @type {Record<string, string>} */
  const attributes = {};
  if (name === 'warehouse') attributes.FilterPolicy = JSON.stringify({ type: ['order.created'] });
  if (name === 'analytics') attributes.RawMessageDelivery = 'true';
  const sub = await sns.send(new SubscribeCommand({
    TopicArn, Protocol: 'sqs', Endpoint: arn, Attributes: attributes, ReturnSubscriptionArn: true,
  }));
  check(!!sub.SubscriptionArn?.startsWith(`${TopicArn}:`), `subscribe ${name}`, sub);
}
const listed = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
check(listed.Subscriptions?.length === 3, 'three subscriptions', listed.Subscriptions);
const attrs = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
check(attrs.Attributes?.SubscriptionsConfirmed === '3', 'topic attributes', attrs.Attributes);

for (const type of ['order.created', 'order.shipped']) {
  const r = await sns.send(new PublishCommand({
    TopicArn, Message: JSON.stringify({ type }), Subject: 'Order',
    MessageAttributes: { type: { DataType: 'String', StringValue: type } },
  }));
  check(!!r.MessageId, 'publish', r);
}
const email = await drain(urls.email, 2);
check(email.length === 2, 'email gets both', email.length);
const env = JSON.parse(email[0]?.Body ?? '{}');
check(env.Type === 'Notification' && env.TopicArn === TopicArn && env.Subject === 'Order',
  'envelope', env);
check(env.MessageAttributes?.type?.Type === 'String', 'envelope attributes', env.MessageAttributes);
const warehouse = await drain(urls.warehouse, 1);
check(warehouse.length === 1 &&
  JSON.parse(JSON.parse(warehouse[0].Body ?? '{}').Message).type === 'order.created',
  'warehouse filtered', warehouse.map((m) => m.Body));
const analytics = await drain(urls.analytics, 2);
check(analytics.length === 2 && analytics.every((m) => m.MessageAttributes?.type?.StringValue),
  'analytics raw with attributes', analytics);

const batch = await sns.send(new PublishBatchCommand({
  TopicArn,
  PublishBatchRequestEntries: [{ Id: 'a', Message: 'one' }, { Id: 'b', Message: 'two' }],
}));
check(batch.Successful?.length === 2 && !batch.Failed?.length, 'publish batch', batch);
check((await drain(urls.analytics, 2)).length === 2, 'batch delivered', null);

try {
  await sns.send(new PublishCommand({ TopicArn: `${TopicArn}-gone`, Message: 'x' }));
  check(false, 'missing topic: no error');
} catch (e) {
  check(e instanceof NotFoundException, 'missing topic exception', /** @type {any} */ (e)?.name);
}
try {
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: 'not-an-arn' }));
  check(false, 'bad endpoint: no error');
} catch (e) {
  check(e instanceof InvalidParameterException, 'bad endpoint exception',
    /** @type {any} */ (e)?.name);
}

console.log(JSON.stringify({ checks, failures }));
process.exit(failures.length ? 1 : 0);
