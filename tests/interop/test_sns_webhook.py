"""SNS http webhooks: the confirmation handshake (a SubscriptionConfirmation POST whose
SubscribeURL, fetched unsigned, confirms), notifications POSTed in SNS's envelope with its
headers, a failed delivery retried until the endpoint accepts it, and Unsubscribe."""

import http.server
import json
import threading
import time
import urllib.request

import boto3

from sqs_helpers import DUMMY, client


class Hook(http.server.BaseHTTPRequestHandler):
    received = []     # (headers, body) of every POST, in order
    fail_next = [0]   # answer 500 to this many notifications first

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        Hook.received.append((dict(self.headers), body))
        kind = self.headers.get("x-amz-sns-message-type")
        status = 200
        if kind == "Notification" and Hook.fail_next[0] > 0:
            Hook.fail_next[0] -= 1
            status = 500
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def wait_for(pred, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


def test_webhook_handshake_delivery_and_retry(sbserver):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook?x=1"
        sns = boto3.client("sns", endpoint_url=f"http://127.0.0.1:{sbserver.port}",
                           region_name="us-east-1", **DUMMY)
        topic = sns.create_topic(Name="hooked")["TopicArn"]
        r = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
        assert r["SubscriptionArn"] == "pending confirmation"
        conf = wait_for(lambda: [b for h, b in Hook.received
                                 if h.get("x-amz-sns-message-type") == "SubscriptionConfirmation"])
        assert conf, "no SubscriptionConfirmation arrived"
        msg = json.loads(conf[0])
        assert msg["Type"] == "SubscriptionConfirmation" and msg["TopicArn"] == topic
        assert len(msg["Token"]) == 64
        # Nothing is delivered before the confirmation.
        sns.publish(TopicArn=topic, Message="too early")
        with urllib.request.urlopen(msg["SubscribeURL"], timeout=10) as resp:
            text = resp.read().decode()
        assert resp.status == 200 and "<SubscriptionArn>" + topic + ":" in text
        arn = text.split("<SubscriptionArn>")[1].split("</SubscriptionArn>")[0]
        # Confirming again (the API action) answers the same subscription.
        assert sns.confirm_subscription(TopicArn=topic, Token=msg["Token"])[
            "SubscriptionArn"] == arn
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("http", url)]

        Hook.fail_next[0] = 1
        sns.publish(TopicArn=topic, Message="hello hook", Subject="S",
                    MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
        notes = wait_for(lambda: [(h, b) for h, b in Hook.received
                                  if h.get("x-amz-sns-message-type") == "Notification"][1:] and
                         [(h, b) for h, b in Hook.received
                          if h.get("x-amz-sns-message-type") == "Notification"])
        assert notes, "the notification was not retried after a 500"
        h, b = notes[-1]
        env = json.loads(b)
        assert env["Type"] == "Notification" and env["Message"] == "hello hook"
        assert env["Subject"] == "S" and env["MessageAttributes"]["k"]["Value"] == "v"
        assert h["x-amz-sns-topic-arn"] == topic and h["x-amz-sns-subscription-arn"] == arn
        assert all(json.loads(x)["Message"] != "too early" for _, x in notes)

        sns.unsubscribe(SubscriptionArn=arn)
        assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
        assert not [u for u in client(sbserver.port).list_queues().get("QueueUrls", [])
                    if "sns-hook-" in u]
    finally:
        srv.shutdown()
