"""AddPermission and RemovePermission through boto3 (Query protocol) and raw AWS JSON 1.0: the
queue's Policy attribute is the JSON policy document AWS keeps (one statement per label), a
policy set whole by SetQueueAttributes is edited rather than replaced, and duplicate or
missing labels get AWS's errors."""

import json

import botocore.exceptions
import pytest

from sqs_helpers import client, raw_json

ARN = "arn:aws:sqs:us-east-1:000000000000:{}"


@pytest.fixture
def sqs(sbserver):
    return client(sbserver.port)


def policy(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    return json.loads(a["Policy"]) if "Policy" in a else None


def error(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]


def test_add_and_remove_permissions(sqs):
    url = sqs.create_queue(QueueName="perm")["QueueUrl"]
    assert policy(sqs, url) is None
    sqs.add_permission(QueueUrl=url, Label="one", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    assert policy(sqs, url) == {
        "Version": "2012-10-17", "Id": ARN.format("perm") + "/SQSDefaultPolicy",
        "Statement": [{"Sid": "one", "Effect": "Allow",
                       "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                       "Action": "SQS:SendMessage", "Resource": ARN.format("perm")}]}
    sqs.add_permission(QueueUrl=url, Label="two", AWSAccountIds=["111122223333", "444455556666"],
                       Actions=["ReceiveMessage", "DeleteMessage"])
    st = policy(sqs, url)["Statement"]
    assert [s["Sid"] for s in st] == ["one", "two"]
    assert st[1]["Principal"]["AWS"] == ["arn:aws:iam::111122223333:root",
                                         "arn:aws:iam::444455556666:root"]
    assert st[1]["Action"] == ["SQS:ReceiveMessage", "SQS:DeleteMessage"]

    e = error(sqs.add_permission, QueueUrl=url, Label="one", AWSAccountIds=["111122223333"],
              Actions=["SendMessage"])
    assert e["Code"] == "InvalidParameterValue"
    assert e["Message"] == "Value one for parameter Label is invalid. Reason: Already exists."
    assert [s["Sid"] for s in policy(sqs, url)["Statement"]] == ["one", "two"]

    sqs.remove_permission(QueueUrl=url, Label="one")
    assert [s["Sid"] for s in policy(sqs, url)["Statement"]] == ["two"]
    e = error(sqs.remove_permission, QueueUrl=url, Label="one")
    assert e["Code"] == "InvalidParameterValue"
    assert e["Message"] == ("Value one for parameter Label is invalid. Reason: can't find label "
                            "on existing policy.")
    sqs.remove_permission(QueueUrl=url, Label="two")
    assert policy(sqs, url) is None  # the last statement takes the policy with it
    # A label can be used again once removed.
    sqs.add_permission(QueueUrl=url, Label="one", AWSAccountIds=["111122223333"], Actions=["*"])
    assert policy(sqs, url)["Statement"][0]["Action"] == "SQS:*"


def test_bad_permission_requests(sqs):
    url = sqs.create_queue(QueueName="perm-bad")["QueueUrl"]
    ok = {"QueueUrl": url, "Label": "x", "AWSAccountIds": ["111122223333"],
          "Actions": ["SendMessage"]}
    for change, code in [({"Label": "bad label"}, "InvalidParameterValue"),
                         ({"Label": "a" * 81}, "InvalidParameterValue"),
                         ({"AWSAccountIds": ["12345"]}, "InvalidParameterValue"),
                         ({"Actions": ["CreateQueue"]}, "InvalidParameterValue"),
                         ({"Actions": ["AddPermission"]}, "InvalidParameterValue"),
                         ({"AWSAccountIds": []}, "MissingParameter"),
                         ({"Actions": []}, "MissingParameter")]:
        assert error(sqs.add_permission, **dict(ok, **change))["Code"] == code, change
    assert policy(sqs, url) is None  # nothing was written by a failed request
    missing = ARN.format("nope").replace("arn:aws:sqs:us-east-1:", "http://127.0.0.1/")
    e = error(sqs.remove_permission, QueueUrl=url.replace("perm-bad", "nope"), Label="x")
    assert e["Code"] == "AWS.SimpleQueueService.NonExistentQueue", missing
    for n in range(20):
        sqs.add_permission(**dict(ok, Label=f"l{n}"))
    assert error(sqs.add_permission, **dict(ok, Label="l20"))["Code"] == "OverLimit"
    assert len(policy(sqs, url)["Statement"]) == 20


def test_policy_set_whole_is_edited_not_replaced(sqs):
    url = sqs.create_queue(QueueName="perm-own")["QueueUrl"]
    own = {"Version": "2012-10-17", "Id": "mine", "Statement": [
        {"Sid": "keep", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
         "Resource": ARN.format("perm-own"),
         "Condition": {"NumericLessThan": {"aws:EpochTime": 5}, "Bool": {"aws:SecureTransport": False}}}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(own)})
    sqs.add_permission(QueueUrl=url, Label="added", AWSAccountIds=["111122223333"],
                       Actions=["GetQueueUrl"])
    p = policy(sqs, url)
    assert p["Id"] == "mine" and p["Statement"][0] == own["Statement"][0]  # numbers, bools kept
    assert p["Statement"][1]["Sid"] == "added"
    sqs.remove_permission(QueueUrl=url, Label="added")
    assert policy(sqs, url) == own
    # Documents longer than one broker attribute value (1000 bytes) round-trip whole, through
    # CreateQueue and SetQueueAttributes, and a shorter one leaves nothing of a longer one.
    big = dict(own, Statement=[dict(own["Statement"][0], Sid=f"s{i}") for i in range(30)])
    text = json.dumps(big)
    assert 5000 < len(text) < 20480
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": text})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"] == \
        {"Policy": text}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(own)})
    assert policy(sqs, url) == own
    url2 = sqs.create_queue(QueueName="perm-big", Attributes={"Policy": text})["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url2, AttributeNames=["All"])["Attributes"][
        "Policy"] == text
    sqs.set_queue_attributes(QueueUrl=url2, Attributes={"Policy": ""})
    assert policy(sqs, url2) is None
    assert error(sqs.set_queue_attributes, QueueUrl=url2,
                 Attributes={"Policy": " " * 20481})["Code"] == "InvalidAttributeValue"
    # A policy that is not a JSON object cannot be edited: an error, and it stays as it was.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": "[1, 2]"})
    assert error(sqs.add_permission, QueueUrl=url, Label="x", AWSAccountIds=["111122223333"],
                 Actions=["SendMessage"])["Code"] == "InvalidParameterValue"


def test_permissions_over_aws_json(sbserver, sqs):
    url = sqs.create_queue(QueueName="perm-json")["QueueUrl"]
    st, _, body = raw_json(sbserver.port, "AddPermission", {
        "QueueUrl": url, "Label": "j", "AWSAccountIds": ["111122223333"],
        "Actions": ["SendMessage", "ChangeMessageVisibility"]})
    assert st == 200 and json.loads(body or "{}") == {}, body
    assert policy(sqs, url)["Statement"][0]["Action"] == ["SQS:SendMessage",
                                                          "SQS:ChangeMessageVisibility"]
    st, h, body = raw_json(sbserver.port, "AddPermission", {
        "QueueUrl": url, "Label": "j", "AWSAccountIds": ["111122223333"], "Actions": ["*"]})
    assert st == 400 and json.loads(body)["__type"] == "com.amazonaws.sqs#InvalidParameterValue"
    assert h["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    st, _, body = raw_json(sbserver.port, "RemovePermission", {"QueueUrl": url, "Label": "j"})
    assert st == 200, body
    assert policy(sqs, url) is None
    st, _, body = raw_json(sbserver.port, "RemovePermission", {"QueueUrl": url})
    assert st == 400 and json.loads(body)["__type"] == "com.amazonaws.sqs#MissingParameter"
