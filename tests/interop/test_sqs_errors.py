"""Bad input to the SQS API: each mistake gets the AWS error code the SDK maps to its
exception, in the protocol's own error format, and nothing is enqueued by a failed request."""

import json
import re

import pytest

from sqs_helpers import client, raw, raw_json


@pytest.fixture
def sqs(sbserver):
    return client(sbserver.port)


def depth(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesDelayed"]) \
        + int(a["ApproximateNumberOfMessagesNotVisible"])


def code(exc):
    return exc.value.response["Error"]["Code"]


def xml_code(text):
    m = re.search(r"<Code>([^<]*)</Code>", text)
    return m.group(1) if m else None


def test_query_protocol_errors_raw(sbserver, sqs):
    port = sbserver.port
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    st, h, body = raw(port, "Action=Frobnicate&Version=2012-11-05")
    assert st == 400 and xml_code(body) == "InvalidAction", body
    assert "<ErrorResponse" in body and "<Type>Sender</Type>" in body and h["x-amzn-requestid"]
    st, _, body = raw(port, "Version=2012-11-05")
    assert st == 400 and xml_code(body) == "MissingParameter"
    st, _, body = raw(port, "Action=SendMessage&QueueUrl=" + url)
    assert st == 400 and xml_code(body) == "MissingParameter" and "MessageBody" in body
    st, _, body = raw(port, "Action=SendMessage&MessageBody=x")
    assert st == 400 and xml_code(body) == "MissingParameter" and "QueueUrl" in body
    st, _, body = raw(port, "Action=SendMessage&MessageBody=%zz&QueueUrl=" + url)
    assert st == 400 and xml_code(body) == "MalformedQueryString"
    st, _, body = raw(port, "Action=SendMessage&MessageBody=a&MessageBody=b&QueueUrl=" + url)
    assert st == 400 and xml_code(body) == "MalformedQueryString"
    # The queue URL's path addresses the queue too (Query protocol).
    st, _, body = raw(port, "Action=SendMessage&MessageBody=by-path", path="/000000000000/q")
    assert st == 200 and "<MessageId>" in body
    st, _, body = raw(port, "Action=GetQueueUrl&QueueName=q", method="GET",
                      path="/?Action=GetQueueUrl&QueueName=q")
    assert st == 200 and url in body
    assert depth(sqs, url) == 1


def test_json_protocol_errors_raw(sbserver):
    port = sbserver.port
    st, h, body = raw_json(port, "GetQueueUrl", {"QueueName": "nope"})
    assert st == 400
    assert json.loads(body)["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert h["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert h["content-type"] == "application/x-amz-json-1.0"
    st, h, body = raw_json(port, "Frobnicate", {})
    assert st == 400 and json.loads(body)["__type"].endswith("#InvalidAction")
    st, h, body = raw(port, b'{"QueueName": ', {"content-type": "application/x-amz-json-1.0",
                                               "x-amz-target": "AmazonSQS.CreateQueue"})
    assert st == 400 and json.loads(body)["__type"].endswith("#SerializationException")
    st, h, body = raw_json(port, "CreateQueue", {"QueueName": "j", "Attributes": {
        "VisibilityTimeout": "43201"}})
    assert st == 400 and json.loads(body)["__type"].endswith("#InvalidAttributeValue")
    st, h, body = raw_json(port, "CreateQueue", {"QueueName": "j"})
    assert st == 200 and json.loads(body)["QueueUrl"].endswith("/000000000000/j")


def test_sdk_exceptions(sqs):
    url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})[
        "QueueUrl"]
    missing = url.replace("small", "missing")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=missing, MessageBody="x")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.receive_message(QueueUrl=missing)
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert code(e) == "InvalidParameterValue"
    # Attribute names, types and values count toward the size too.
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1000, MessageAttributes={
            "a" * 20: {"DataType": "String", "StringValue": "v" * 10}})
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x01 char")
    assert code(e) == "InvalidMessageContents"
    for bad in ({"n": {"DataType": "Number", "StringValue": "twelve"}},
                {"n": {"DataType": "Strange", "StringValue": "x"}},
                {"AWS.x": {"DataType": "String", "StringValue": "x"}},
                {"n": {"DataType": "String", "StringValue": ""}},
                {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(11)}):
        with pytest.raises(sqs.exceptions.ClientError) as e:
            sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=bad)
        assert code(e) == "InvalidParameterValue", bad
    for attrs, want in (({"VisibilityTimeout": "43201"}, "InvalidAttributeValue"),
                        ({"MessageRetentionPeriod": "59"}, "InvalidAttributeValue"),
                        ({"MaximumMessageSize": "1048577"}, "InvalidAttributeValue"),
                        ({"DelaySeconds": "-1"}, "InvalidAttributeValue"),
                        ({"RedrivePolicy": "{not json"}, "InvalidAttributeValue"),
                        ({"RedrivePolicy": json.dumps({
                            "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:gone",
                            "maxReceiveCount": 3})}, "InvalidAttributeValue"),
                        ({"RedrivePolicy": json.dumps({
                            "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:small",
                            "maxReceiveCount": 0})}, "InvalidAttributeValue"),
                        ({"Colour": "blue"}, "InvalidAttributeName"),
                        ({"QueueArn": "arn:x"}, "InvalidAttributeName"),
                        ({"ContentBasedDeduplication": "true"}, "InvalidAttributeName")):
        with pytest.raises(sqs.exceptions.ClientError) as e:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        assert code(e) == want, attrs
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="bad name!")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="nofifo.fifo")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Colour"])
    assert code(e) == "InvalidAttributeName"
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="bogus", VisibilityTimeout=1)
    assert depth(sqs, url) == 0

    # A stale receipt handle (the message was received again since).
    sqs.send_message(QueueUrl=url, MessageBody="once")
    m1 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]
    m2 = sqs.receive_message(QueueUrl=url)["Messages"][0]
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"],
                                      VisibilityTimeout=5)
    assert code(e) in ("AWS.SimpleQueueService.MessageNotInflight", "ReceiptHandleIsInvalid")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
    # Visibility of a deleted message: not in flight.
    with pytest.raises(sqs.exceptions.MessageNotInflight):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"],
                                      VisibilityTimeout=5)


def test_batch_errors(sqs):
    url = sqs.create_queue(QueueName="batch")["QueueUrl"]
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "1"},
                                                      {"Id": "a", "MessageBody": "2"}])
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": f"e{i}", "MessageBody": "x"} for i in range(11)])
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.InvalidBatchEntryId):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "no spaces", "MessageBody": "x"}])
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "a", "ReceiptHandle": "x"},
                                                        {"Id": "a", "ReceiptHandle": "y"}])
    assert depth(sqs, url) == 0

    # Partial failure: the good entries are sent, the bad one is reported in Failed.
    r = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "good1", "MessageBody": "ok"},
        {"Id": "bad", "MessageBody": "x", "MessageAttributes": {
            "n": {"DataType": "Number", "StringValue": "NaN-ish"}}},
        {"Id": "good2", "MessageBody": "ok too", "DelaySeconds": 0}])
    assert sorted(e["Id"] for e in r["Successful"]) == ["good1", "good2"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in r["Failed"]] == \
        [("bad", "InvalidParameterValue", True)]
    assert depth(sqs, url) == 2
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    r = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "d0", "ReceiptHandle": msgs[0]["ReceiptHandle"]},
        {"Id": "d1", "ReceiptHandle": "garbage"}])
    assert [s["Id"] for s in r["Successful"]] == ["d0"]
    assert [(f["Id"], f["Code"]) for f in r["Failed"]] == [("d1", "ReceiptHandleIsInvalid")]
