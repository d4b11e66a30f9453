"""SNS message signatures on webhook deliveries, checked the way a subscriber checks them:
the receiver fetches SigningCertURL, builds SNS's canonical string for the message type and
verifies the signature with python3-cryptography (SHA1withRSA for SignatureVersion 1, the
default, SHA256withRSA when the topic's SignatureVersion is 2). A tampered envelope fails.
The key is generated into the data directory on first start and kept across restarts, or
taken from --sns-signing-key."""

import base64
import datetime
import http.server
import json
import os
import threading
import urllib.request

import boto3
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sqs_helpers import DUMMY, client, refused_start
from test_sns_webhook import wait_for

NOTIFICATION_FIELDS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION_FIELDS = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                       "Type"]


def canonical(env):
    """SNS's string to sign: "Name\\nValue\\n" per field, in the documented order; Subject
    only when present."""
    fields = NOTIFICATION_FIELDS if env["Type"] == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{k}\n{env[k]}\n" for k in fields if k in env).encode()


def verify(env):
    """Raises InvalidSignature (or KeyError/ValueError) unless env's signature is valid."""
    with urllib.request.urlopen(env["SigningCertURL"], timeout=10) as r:
        assert r.status == 200
        cert = x509.load_pem_x509_certificate(r.read())
    digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}[env["SignatureVersion"]]
    cert.public_key().verify(base64.b64decode(env["Signature"]), canonical(env),
                             padding.PKCS1v15(), digest)
    return cert


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []  # every POSTed envelope, parsed

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        env = json.loads(body)
        assert self.headers["x-amz-sns-message-type"] == env["Type"]
        Receiver.received.append(env)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()


def sns_client(server):
    return boto3.client("sns", endpoint_url=f"http://127.0.0.1:{server.port}",
                        region_name="us-east-1", **DUMMY)


def subscribe_and_publish(sns, topic, url, messages):
    """Subscribes url, confirms through the SubscribeURL, publishes; returns the envelopes
    received for this topic (confirmation first)."""
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
    conf = wait_for(lambda: [e for e in Receiver.received if e["TopicArn"] == topic])
    assert conf and conf[0]["Type"] == "SubscriptionConfirmation"
    with urllib.request.urlopen(conf[0]["SubscribeURL"], timeout=10) as r:
        assert r.status == 200
    for m in messages:
        sns.publish(TopicArn=topic, **m)
    got = wait_for(lambda: len([e for e in Receiver.received if e["TopicArn"] == topic]) >=
                   1 + len(messages) and [e for e in Receiver.received if e["TopicArn"] == topic])
    assert got, Receiver.received
    return got


def test_every_webhook_envelope_verifies(server_factory, receiver, tmp_path):
    server = server_factory(kind="switchboard")
    sns = sns_client(server)
    v1 = sns.create_topic(Name="signed")["TopicArn"]
    got = subscribe_and_publish(sns, v1, receiver, [
        {"Message": "plain"},
        {"Message": "with subject \u00e9\n\"quoted\"", "Subject": "Hi"}])
    assert [e["Type"] for e in got] == ["SubscriptionConfirmation", "Notification", "Notification"]
    # The webhook's internal queue is not one of the account's SQS queues.
    sqs = client(server.port)
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert sqs.list_queues(QueueNamePrefix="sns-hook-").get("QueueUrls", []) == []
    sqs.create_queue(QueueName="sns-hook-looking")  # hidden too: the prefix is reserved
    sqs.create_queue(QueueName="visible")
    names, token = [], None  # pages may come out short (AWS allows it), never wrong
    for _ in range(10):
        page = sqs.list_queues(MaxResults=1, **({"NextToken": token} if token else {}))
        names += [u.rsplit("/", 1)[1] for u in page.get("QueueUrls", [])]
        token = page.get("NextToken")
        if not token:
            break
    assert names == ["visible"]
    for env in got:
        assert env["SignatureVersion"] == "1"
        assert env["SigningCertURL"].startswith(f"http://127.0.0.1:{server.port}/")
        assert env["SigningCertURL"].endswith(".pem")
        verify(env)
    # Tampering with any signed field, or the version, breaks the signature.
    for field, value in [("Message", "plain!"), ("Subject", "Ho"), ("TopicArn", v1 + "x"),
                         ("Timestamp", "2020-01-01T00:00:00.000Z")]:
        bad = dict(got[2], **{field: value})
        with pytest.raises(InvalidSignature):
            verify(bad)
    with pytest.raises(InvalidSignature):
        verify(dict(got[0], Token="0" * 64))
    with pytest.raises(InvalidSignature):
        verify(dict(got[1], SignatureVersion="2"))

    # Unsubscribe: the endpoint is told with a signed UnsubscribeConfirmation, after which the
    # webhook's internal queue goes away.
    arn = sns.list_subscriptions_by_topic(TopicArn=v1)["Subscriptions"][0]["SubscriptionArn"]
    sns.unsubscribe(SubscriptionArn=arn)
    bye = wait_for(lambda: [e for e in Receiver.received if e["Type"] == "UnsubscribeConfirmation"])
    assert bye and bye[0]["TopicArn"] == v1 and arn in bye[0]["Message"], Receiver.received
    assert bye[0]["Token"] == got[0]["Token"] and "SubscribeURL" in bye[0]
    verify(bye[0])
    with pytest.raises(InvalidSignature):
        verify(dict(bye[0], SubscribeURL=bye[0]["SubscribeURL"] + "x"))
    hook = "sns-hook-" + got[0]["Token"][:16]

    def hook_gone():
        try:
            sqs.get_queue_url(QueueName=hook)
            return False
        except sqs.exceptions.QueueDoesNotExist:
            return True
    assert wait_for(hook_gone), "the unsubscribed webhook's queue is still there"
    assert sns.list_subscriptions_by_topic(TopicArn=v1)["Subscriptions"] == []

    # SignatureVersion 2 (SHA256withRSA) per topic.
    v2 = sns.create_topic(Name="signed2", Attributes={"SignatureVersion": "2"})["TopicArn"]
    assert sns.get_topic_attributes(TopicArn=v2)["Attributes"]["SignatureVersion"] == "2"
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.set_topic_attributes(TopicArn=v2, AttributeName="SignatureVersion",
                                 AttributeValue="3")
    got2 = subscribe_and_publish(sns, v2, receiver, [{"Message": "sha256"}])
    assert [e["SignatureVersion"] for e in got2] == ["2", "2"]
    for env in got2:
        verify(env)
    with pytest.raises(InvalidSignature):
        verify(dict(got2[1], SignatureVersion="1"))

    # The key lives in the data directory and survives a restart.
    cert_url = got[0]["SigningCertURL"].split("/", 3)[3]
    pem = os.path.join(str(tmp_path), "data", "sns-signing.pem")
    assert os.path.exists(pem) and (os.stat(pem).st_mode & 0o777) == 0o600
    server.check_clean()
    again = server_factory(kind="switchboard")
    with urllib.request.urlopen(f"http://127.0.0.1:{again.port}/{cert_url}", timeout=10) as r:
        assert r.status == 200 and b"BEGIN CERTIFICATE" in r.read()


def test_signing_key_from_a_flag(server_factory, receiver, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = tmp_path / "mine.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) +
                     cert.public_bytes(serialization.Encoding.PEM))
    server = server_factory("--sns-signing-key", str(path), kind="switchboard")
    sns = sns_client(server)
    topic = sns.create_topic(Name="flagged")["TopicArn"]
    got = subscribe_and_publish(sns, topic, receiver, [{"Message": "m"}])
    for env in got:
        assert verify(env) == cert
    # A key file that does not hold a key and its certificate stops the server from starting.
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    rc, out = refused_start(tmp_path / "d2", "--sns-signing-key", str(bad))
    assert rc != 0 and "sns_signing_key_failed" in out, out
