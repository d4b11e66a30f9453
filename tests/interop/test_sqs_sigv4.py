"""SigV4 on the SQS API: without credentials (dev mode) anything is accepted; with
`serve --sqs-credentials KEY:SECRET` boto3 (Query) and a raw JSON request signed by botocore's
own signer pass, and a wrong secret, an unknown key, an unsigned request or a stale
signature is refused with AWS's error."""

import datetime
import json

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from sqs_helpers import client, raw

KEY, SECRET = "AKIDEXAMPLE", "dummy-secret"


class _Clock:
    """Stands in for the datetime module inside botocore.auth, to sign at another time."""

    def __init__(self, when):
        outer = self

        class _DT(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return outer.when

        self.when = when
        self.datetime = _DT


def signed_json(port, action, payload, secret=SECRET, when=None, monkeypatch=None):
    url = f"http://127.0.0.1:{port}/"
    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=json.dumps(payload), headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(KEY, secret), "sqs",
                                     "us-east-1")
    if when:
        with monkeypatch.context() as m:
            m.setattr(botocore.auth, "datetime", _Clock(when))
            signer.add_auth(req)
    else:
        signer.add_auth(req)
    p = req.prepare()
    return raw(port, p.body, dict(p.headers))


def test_signatures_verified_with_credentials(server_factory, monkeypatch):
    srv = server_factory("--sqs-credentials", f"{KEY}:{SECRET}", kind="switchboard")
    good = client(srv.port)
    url = good.create_queue(QueueName="signed")["QueueUrl"]
    good.send_message(QueueUrl=url, MessageBody="hello")
    assert good.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == \
        "hello"

    bad = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{srv.port}", region_name="us-east-1",
                       aws_access_key_id=KEY, aws_secret_access_key="wrong")
    with pytest.raises(bad.exceptions.ClientError) as e:
        bad.send_message(QueueUrl=url, MessageBody="forged")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    other = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{srv.port}",
                         region_name="us-east-1", aws_access_key_id="AKIDOTHER",
                         aws_secret_access_key=SECRET)
    with pytest.raises(other.exceptions.ClientError) as e:
        other.list_queues()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"

    st, h, body = raw(srv.port, "Action=ListQueues")
    assert st == 403 and "<Code>MissingAuthenticationToken</Code>" in body
    st, h, body = signed_json(srv.port, "GetQueueUrl", {"QueueName": "signed"})
    assert st == 200 and json.loads(body)["QueueUrl"] == url
    st, h, body = signed_json(srv.port, "GetQueueUrl", {"QueueName": "signed"}, secret="nope")
    assert st == 403 and h["x-amzn-query-error"].startswith("SignatureDoesNotMatch;")
    old = datetime.datetime.utcnow() - datetime.timedelta(hours=1)
    st, h, body = signed_json(srv.port, "GetQueueUrl", {"QueueName": "signed"}, when=old,
                               monkeypatch=monkeypatch)
    assert st == 400 and json.loads(body)["__type"].endswith("#RequestExpired")
    # Nothing the refused requests carried was enqueued.
    assert good.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == \
        "hello"
    a = good.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "1"


def test_dev_mode_accepts_any_signature(sbserver):
    anyone = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{sbserver.port}",
                          region_name="eu-west-1", aws_access_key_id="whatever",
                          aws_secret_access_key="anything")
    assert anyone.create_queue(QueueName="dev")["QueueUrl"].endswith("/000000000000/dev")
    st, _, body = raw(sbserver.port, "Action=ListQueues")
    assert st == 200 and "/000000000000/dev" in body
