"""SNS through Debian's boto3 (Query protocol) on the topic engine: the issue's fan-out — a
topic `order-events` with three SQS subscribers (email, warehouse, analytics), one with a
filter policy, one with raw delivery — each receiving what it should; topic and subscription
administration; PublishBatch; FIFO topic to FIFO queue; errors mapped to boto3's exceptions."""

import base64
import json

import boto3
import pytest

from sqs_helpers import DUMMY, client


def sns_client(port):
    return boto3.client("sns", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        **DUMMY)


def drain(sqs, url, want, attrs=False):
    got = []
    for _ in range(10):
        kw = {"MessageAttributeNames": ["All"]} if attrs else {}
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw)
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if len(got) >= want:
            break
    return got


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]


def test_fan_out_to_three_queues(sbserver):
    sns, sqs = sns_client(sbserver.port), client(sbserver.port)
    topic = sns.create_topic(Name="order-events", Attributes={"DisplayName": "Orders"})[
        "TopicArn"]
    assert topic == "arn:aws:sns:us-east-1:000000000000:order-events"
    assert sns.create_topic(Name="order-events", Attributes={"DisplayName": "Orders"})[
        "TopicArn"] == topic
    urls = {n: sqs.create_queue(QueueName=n)["QueueUrl"] for n in ("email", "warehouse",
                                                                   "analytics")}
    subs = {}
    subs["email"] = sns.subscribe(TopicArn=topic, Protocol="sqs",
                                  Endpoint=queue_arn(sqs, urls["email"]),
                                  ReturnSubscriptionArn=True)["SubscriptionArn"]
    subs["warehouse"] = sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, urls["warehouse"]),
        Attributes={"FilterPolicy": json.dumps({"type": ["order.created"],
                                                "total": [{"numeric": [">=", 100]}]})},
        ReturnSubscriptionArn=True)["SubscriptionArn"]
    subs["analytics"] = sns.subscribe(TopicArn=topic, Protocol="sqs",
                                      Endpoint=queue_arn(sqs, urls["analytics"]),
                                      Attributes={"RawMessageDelivery": "true"},
                                      ReturnSubscriptionArn=True)["SubscriptionArn"]
    assert all(a.startswith(topic + ":") for a in subs.values())
    # Subscribing the same queue again returns the same subscription.
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, urls["email"]),
                         ReturnSubscriptionArn=True)["SubscriptionArn"] == subs["email"]

    events = [("order.created", 120, "big order"), ("order.created", 5, "small order"),
              ("order.cancelled", 300, "cancelled")]
    ids = []
    for typ, total, text in events:
        ids.append(sns.publish(TopicArn=topic, Subject="Order", Message=json.dumps(
            {"text": text}), MessageAttributes={
                "type": {"DataType": "String", "StringValue": typ},
                "total": {"DataType": "Number", "StringValue": str(total)},
                "sig": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}})["MessageId"])

    email = drain(sqs, urls["email"], 3)
    assert len(email) == 3
    envs = [json.loads(m["Body"]) for m in email]
    assert sorted(e["MessageId"] for e in envs) == sorted(ids)
    e0 = next(e for e in envs if e["MessageId"] == ids[0])
    assert e0["Type"] == "Notification" and e0["TopicArn"] == topic and e0["Subject"] == "Order"
    assert json.loads(e0["Message"]) == {"text": "big order"}
    assert e0["MessageAttributes"]["type"] == {"Type": "String", "Value": "order.created"}
    assert e0["MessageAttributes"]["sig"] == {"Type": "Binary",
                                              "Value": base64.b64encode(b"\x01\x02").decode()}
    assert e0["Timestamp"].endswith("Z") and subs["email"] in e0["UnsubscribeURL"]
    assert "MessageAttributes" not in email[0]  # not raw: attributes ride in the envelope

    warehouse = drain(sqs, urls["warehouse"], 1)
    assert [json.loads(json.loads(m["Body"])["Message"])["text"] for m in warehouse] == \
        ["big order"]

    analytics = drain(sqs, urls["analytics"], 3, attrs=True)
    assert sorted(json.loads(m["Body"])["text"] for m in analytics) == \
        ["big order", "cancelled", "small order"]
    assert all(m["MessageAttributes"]["type"]["DataType"] == "String" for m in analytics)

    # Administration.
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    a = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert a["SubscriptionsConfirmed"] == "3" and a["DisplayName"] == "Orders"
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="O2")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "O2"
    by_topic = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["SubscriptionArn"] for s in by_topic) == sorted(subs.values())
    assert all(s["Protocol"] == "sqs" and s["TopicArn"] == topic for s in by_topic)
    assert len(sns.list_subscriptions()["Subscriptions"]) == 3
    sa = sns.get_subscription_attributes(SubscriptionArn=subs["warehouse"])["Attributes"]
    assert json.loads(sa["FilterPolicy"])["type"] == ["order.created"]
    assert sa["RawMessageDelivery"] == "false" and sa["Endpoint"].endswith(":warehouse")
    sns.set_subscription_attributes(SubscriptionArn=subs["email"],
                                    AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.unsubscribe(SubscriptionArn=subs["analytics"])
    r = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "raw-1"}, {"Id": "b", "Message": "raw-2"},
        {"Id": "c", "Message": ""}])
    assert sorted(s["Id"] for s in r["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["Code"]) for f in r["Failed"]] == [("c", "InvalidParameter")]
    assert sorted(m["Body"] for m in drain(sqs, urls["email"], 2)) == ["raw-1", "raw-2"]
    assert drain(sqs, urls["analytics"], 1) == []  # unsubscribed
    sns.delete_topic(TopicArn=topic)
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_topic_attributes(TopicArn=topic)


def test_fifo_topic_to_fifo_queue(sbserver):
    sns, sqs = sns_client(sbserver.port), client(sbserver.port)
    topic = sns.create_topic(Name="orders.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    url = sqs.create_queue(QueueName="orders-sub.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url),
                  Attributes={"RawMessageDelivery": "true"})
    for i in range(4):
        r = sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId="g",
                        MessageDeduplicationId=f"d{i}")
        assert r["SequenceNumber"]
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn=topic, Message="no group")
    got = drain(sqs, url, 4)
    assert [m["Body"] for m in got] == ["m0", "m1", "m2", "m3"]


def test_sns_errors(sbserver):
    sns, sqs = sns_client(sbserver.port), client(sbserver.port)
    topic = sns.create_topic(Name="t")["TopicArn"]
    q = queue_arn(sqs, sqs.create_queue(QueueName="q")["QueueUrl"])
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.publish(TopicArn=topic + "-missing", Message="x")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=q,
                      Attributes={"FilterPolicy": "{not json"})
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="ftp://127.0.0.1/hook")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.create_topic(Name="bad name")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn=topic, Message="")
    with pytest.raises(sns.exceptions.InvalidParameterValueException):
        sns.publish(TopicArn=topic, Message="x", MessageAttributes={
            "n": {"DataType": "Number", "StringValue": "abc"}})
    with pytest.raises(sns.exceptions.BatchEntryIdsNotDistinctException):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
            {"Id": "a", "Message": "1"}, {"Id": "a", "Message": "2"}])
    with pytest.raises(sns.exceptions.TooManyEntriesInBatchRequestException):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
            {"Id": f"i{i}", "Message": "1"} for i in range(11)])
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.unsubscribe(SubscriptionArn=topic + ":00000000-0000-4000-8000-000000000000")
