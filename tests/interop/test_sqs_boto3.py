"""SQS through Debian's boto3 (Query protocol): the issue's producer as written, a consumer
loop, a poison message through the dead-letter queue and back with StartMessageMoveTask,
FIFO ordering and deduplication, long polling, and the other queue actions."""

import json
import os
import threading
import time

import pytest

from sqs_helpers import attr_md5, client, client_with_move_tasks, DUMMY


@pytest.fixture
def sqs(sbserver):
    return client(sbserver.port)


class Order:
    def __init__(self, i):
        self.id = f"o-{i}"
        self.customer_id = f"c-{i % 3}"
        self.total = 10.5 * i


def test_producer_as_written_and_consumer_loop(sbserver, monkeypatch):
    import boto3  # the producer's own import

    url = client(sbserver.port).create_queue(QueueName="orders")["QueueUrl"]
    assert url == f"http://127.0.0.1:{sbserver.port}/000000000000/orders"
    monkeypatch.setenv("ORDER_QUEUE_URL", url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    # The producer; only endpoint_url and dummy credentials added to the client.
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{sbserver.port}", **DUMMY)
    for i in range(1, 26):
        order = Order(i)
        sqs.send_message(
            QueueUrl=os.environ["ORDER_QUEUE_URL"],
            MessageBody=json.dumps({"type": "order.created", "orderId": order.id,
                                    "customerId": order.customer_id, "total": order.total}),
        )

    # A consumer written the way SQS users write them.
    seen = {}
    deadline = time.monotonic() + 30
    while len(seen) < 25 and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for msg in resp.get("Messages", []):
            event = json.loads(msg["Body"])
            assert event["type"] == "order.created"
            seen[event["orderId"]] = event
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    assert sorted(seen) == sorted(f"o-{i}" for i in range(1, 26))
    assert seen["o-4"]["total"] == 42.0
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert attrs["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:orders"


def test_attributes_md5_and_system_attributes(sqs):
    url = sqs.create_queue(QueueName="attrs")["QueueUrl"]
    mattrs = {"event": {"DataType": "String", "StringValue": "order.created ü"},
              "order.amount": {"DataType": "Number", "StringValue": "12.50"},
              "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
              "kind": {"DataType": "String.custom", "StringValue": "x"}}
    body = "line1\r\nline2 <&> \u20ac"
    r = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=mattrs,
                         MessageSystemAttributes={"AWSTraceHeader": {
                             "DataType": "String", "StringValue": "Root=1-abc"}})
    assert r["MD5OfMessageAttributes"] == attr_md5(mattrs)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                            AttributeNames=["All"])["Messages"][0]
    assert m["Body"] == body
    assert m["MessageId"] == r["MessageId"]
    assert m["MessageAttributes"] == mattrs
    assert m["MD5OfMessageAttributes"] == attr_md5(mattrs)
    a = m["Attributes"]
    assert a["ApproximateReceiveCount"] == "1" and a["AWSTraceHeader"] == "Root=1-abc"
    assert abs(int(a["SentTimestamp"]) / 1000 - time.time()) < 60
    # A selection by name and by prefix ("order.*": names starting with "order.") returns
    # only those, with their own MD5.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                  VisibilityTimeout=0)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["order.*", "kind"])[
        "Messages"][0]
    sel = {k: mattrs[k] for k in ("order.amount", "kind")}
    assert m["MessageAttributes"] == sel and m["MD5OfMessageAttributes"] == attr_md5(sel)
    assert "Attributes" not in m


def test_poison_message_dead_letters_and_redrives(sbserver, tmp_path):
    sqs = client_with_move_tasks(sbserver.port, tmp_path)
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName="orders-main", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    assert json.loads(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])[
        "Attributes"]["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]

    body = json.dumps({"type": "order.created", "orderId": "poison", "total": "NaN?"})
    mattrs = {"retry": {"DataType": "Number", "StringValue": "3"},
              "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff\x10"}}
    sent = sqs.send_message(QueueUrl=src, MessageBody=body, MessageAttributes=mattrs)
    # A consumer that fails on it: receive, do not delete, let it come back at once.
    for count in (1, 2):
        m = sqs.receive_message(QueueUrl=src, VisibilityTimeout=0, AttributeNames=["All"])[
            "Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(count)
    assert "Messages" not in sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1)

    m = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], AttributeNames=["All"],
                            WaitTimeSeconds=2)["Messages"][0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body and m["MessageAttributes"] == mattrs
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"],
                                  VisibilityTimeout=0)

    task = sqs.start_message_move_task(SourceArn=dlq_arn)
    assert task["TaskHandle"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        t = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"][0]
        if t["Status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert t["Status"] == "COMPLETED", t
    assert t["ApproximateNumberOfMessagesMoved"] == 1
    m = sqs.receive_message(QueueUrl=src, MessageAttributeNames=["All"],
                            WaitTimeSeconds=2)["Messages"][0]
    assert m["MessageId"] == sent["MessageId"] and m["Body"] == body
    assert m["MessageAttributes"] == mattrs
    sqs.delete_message(QueueUrl=src, ReceiptHandle=m["ReceiptHandle"])
    # Only a running task can be cancelled; a DLQ-less queue cannot be a move source.
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])
    assert e.value.response["Error"]["Code"] == "AWS.SimpleQueueService.UnsupportedOperation"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.start_message_move_task(SourceArn=dlq_arn.replace("orders-dlq", "orders-main"))
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_fifo_order_within_groups_and_dedup(sqs):
    url = sqs.create_queue(QueueName="jobs.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    ids = {}
    seqs = []
    for g, i in [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3)]:
        r = sqs.send_message(QueueUrl=url, MessageBody=f"{g}{i}", MessageGroupId=g)
        ids[f"{g}{i}"] = r["MessageId"]
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs)
    # Content-based dedup: the same body within 5 minutes is the same message.
    assert sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a")[
        "MessageId"] == ids["a1"]
    # Explicit dedup id.
    r1 = sqs.send_message(QueueUrl=url, MessageBody="b3", MessageGroupId="b",
                          MessageDeduplicationId="d-1")
    r2 = sqs.send_message(QueueUrl=url, MessageBody="b3 again", MessageGroupId="b",
                          MessageDeduplicationId="d-1")
    assert r1["MessageId"] == r2["MessageId"]
    got = []
    for _ in range(10):
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   AttributeNames=["MessageGroupId", "SequenceNumber"])
        for m in resp.get("Messages", []):
            got.append((m["Attributes"]["MessageGroupId"], m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if len(got) == 6:
            break
    assert [b for g, b in got if g == "a"] == ["a1", "a2", "a3"]
    assert [b for g, b in got if g == "b"] == ["b1", "b2", "b3"]
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert e.value.response["Error"]["Code"] == "MissingParameter"


def test_long_poll_returns_when_a_message_arrives(sqs):
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    t = threading.Timer(1.0, lambda: client_for(url).send_message(QueueUrl=url,
                                                                 MessageBody="wake"))

    def client_for(u):
        return client(int(u.split(":")[2].split("/")[0]))

    t.start()
    start = time.monotonic()
    resp = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    took = time.monotonic() - start
    t.join()
    assert resp["Messages"][0]["Body"] == "wake"
    assert 0.8 <= took < 5, took
    # An empty queue with a short wait answers empty after about that wait.
    start = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert 0.8 <= time.monotonic() - start < 5


def test_queue_admin_actions(sqs):
    urls = [sqs.create_queue(QueueName=f"adm-{i}", tags={"team": "t"})["QueueUrl"]
            for i in range(5)]
    sqs.create_queue(QueueName="other")
    # Idempotent create; a different attribute value is QueueAlreadyExists.
    assert sqs.create_queue(QueueName="adm-0", tags={"team": "t"})["QueueUrl"] == urls[0]
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="adm-0", Attributes={"VisibilityTimeout": "99"})
    assert sqs.list_queues(QueueNamePrefix="adm-")["QueueUrls"] == urls
    p1 = sqs.list_queues(QueueNamePrefix="adm-", MaxResults=2)
    assert p1["QueueUrls"] == urls[:2] and p1["NextToken"]
    p2 = sqs.list_queues(QueueNamePrefix="adm-", MaxResults=2, NextToken=p1["NextToken"])
    assert p2["QueueUrls"] == urls[2:4]
    pages = list(sqs.get_paginator("list_queues").paginate(QueueNamePrefix="adm-",
                                                            PaginationConfig={"PageSize": 2}))
    assert [u for p in pages for u in p["QueueUrls"]] == urls
    assert sqs.get_queue_url(QueueName="adm-3")["QueueUrl"] == urls[3]

    sqs.set_queue_attributes(QueueUrl=urls[0], Attributes={
        "VisibilityTimeout": "45", "DelaySeconds": "1", "MaximumMessageSize": "2048",
        "MessageRetentionPeriod": "120", "ReceiveMessageWaitTimeSeconds": "2",
        "Policy": '{"Version":"2012-10-17"}'})
    a = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["All"])["Attributes"]
    assert (a["VisibilityTimeout"], a["DelaySeconds"], a["MaximumMessageSize"],
            a["MessageRetentionPeriod"], a["ReceiveMessageWaitTimeSeconds"]) == \
        ("45", "1", "2048", "120", "2")
    assert a["Policy"] == '{"Version":"2012-10-17"}'
    sqs.send_message(QueueUrl=urls[0], MessageBody="delayed")
    a = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=[
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    assert a == {"ApproximateNumberOfMessagesDelayed": "1"}

    sqs.tag_queue(QueueUrl=urls[1], Tags={"env": "dev", "team": "core"})
    assert sqs.list_queue_tags(QueueUrl=urls[1])["Tags"] == {"env": "dev", "team": "core"}
    sqs.untag_queue(QueueUrl=urls[1], TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=urls[1])["Tags"] == {"team": "core"}

    for i in range(3):
        sqs.send_message(QueueUrl=urls[2], MessageBody=f"m{i}")
    sqs.purge_queue(QueueUrl=urls[2])
    assert "Messages" not in sqs.receive_message(QueueUrl=urls[2])

    sqs.delete_queue(QueueUrl=urls[4])
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="adm-4")

    # Batches: send, change visibility, delete; per-entry outcomes.
    r = sqs.send_message_batch(QueueUrl=urls[3], Entries=[
        {"Id": f"e{i}", "MessageBody": f"b{i}"} for i in range(10)])
    assert len(r["Successful"]) == 10 and not r.get("Failed")
    got = sqs.receive_message(QueueUrl=urls[3], MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    r = sqs.change_message_visibility_batch(QueueUrl=urls[3], Entries=[
        {"Id": f"v{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60 + i % 2}
        for i, m in enumerate(got)])
    assert len(r["Successful"]) == 10
    r = sqs.delete_message_batch(QueueUrl=urls[3], Entries=[
        {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert len(r["Successful"]) == 10 and not r.get("Failed")
    a = sqs.get_queue_attributes(QueueUrl=urls[3], AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_pending_long_poll_does_not_hold_shutdown(server_factory):
    """A 20 s long poll in flight when the server stops ends with the grace period (plus one
    engine wait slice), not 20 s later."""
    srv = server_factory("--shutdown-grace-ms", "500", kind="switchboard")
    sqs = client(srv.port)
    url = sqs.create_queue(QueueName="held")["QueueUrl"]
    t = threading.Thread(target=lambda: _swallow(lambda: client(srv.port).receive_message(
        QueueUrl=url, WaitTimeSeconds=20)), daemon=True)
    t.start()
    time.sleep(0.5)
    start = time.monotonic()
    srv.check_clean()
    assert time.monotonic() - start < 5


def _swallow(fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - the server goes away under the request on purpose
        pass
