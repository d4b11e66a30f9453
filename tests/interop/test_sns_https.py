"""SNS https webhooks: the confirmation handshake and deliveries over TLS to a Python https
receiver whose self-signed certificate (made here) the server trusts through
--sns-webhook-ca; receivers it must not trust (a certificate from no trusted CA, or one
issued for another host) get nothing, and the server logs why."""

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import urllib.request

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sqs_helpers import DUMMY, refused_start
from test_sns_signatures import verify
from test_sns_webhook import wait_for


def self_signed(tmp_path, name, san):
    """A key and self-signed certificate for san; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cp, kp = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class TLSServer(http.server.ThreadingHTTPServer):
    def __init__(self, cert, key):
        super().__init__(("127.0.0.1", 0), Receiver)
        self.received = []
        self.handshakes = 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.ctx = ctx

    def get_request(self):
        sock, addr = super().get_request()
        self.handshakes += 1  # every connection attempt, whether its handshake succeeds or not
        return self.ctx.wrap_socket(sock, server_side=True), addr

    def handle_error(self, request, client_address):
        pass  # refused handshakes are expected here


@pytest.fixture
def receivers(tmp_path):
    started = []

    def start(cert, key):
        srv = TLSServer(str(cert), str(key))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return srv
    yield start
    for s in started:
        s.shutdown()


def test_https_webhooks(server_factory, receivers, tmp_path):
    good_cert, good_key = self_signed(tmp_path, "good", [x509.IPAddress(
        ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    other_cert, other_key = self_signed(tmp_path, "other", [x509.IPAddress(
        ipaddress.ip_address("127.0.0.1"))])
    # Trusted (in the CA file) but issued for another host only.
    wrong_cert, wrong_key = self_signed(tmp_path, "wrong", [x509.DNSName("example.com")])
    ca = tmp_path / "ca.pem"
    ca.write_bytes(good_cert.read_bytes() + wrong_cert.read_bytes())
    server = server_factory("--sns-webhook-ca", str(ca), kind="switchboard")
    sns = boto3.client("sns", endpoint_url=f"http://127.0.0.1:{server.port}",
                       region_name="us-east-1", **DUMMY)

    good = receivers(good_cert, good_key)
    for host in ("127.0.0.1", "localhost"):  # an address and a name, both in the certificate
        good.received.clear()
        topic = sns.create_topic(Name=f"tls-{host.replace('.', '-')}")["TopicArn"]
        url = f"https://{host}:{good.server_address[1]}/hook"
        assert sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=url)[
            "SubscriptionArn"] == "pending confirmation"
        conf = wait_for(lambda: good.received)
        assert conf, f"no SubscriptionConfirmation over https ({host})\n{server.tail()}"
        h, env = conf[0]
        assert h["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        verify(env)
        with urllib.request.urlopen(env["SubscribeURL"], timeout=10) as r:
            assert r.status == 200
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("https", url)]
        sns.publish(TopicArn=topic, Message=f"over tls to {host}")
        got = wait_for(lambda: [e for _, e in good.received if e["Type"] == "Notification"])
        assert got and got[0]["Message"] == f"over tls to {host}", server.tail()
        verify(got[0])

    # Untrusted receivers: the handshake is attempted (and retried), nothing is delivered.
    for name, (cert, key), reason in [
            ("other", (other_cert, other_key), "self-signed certificate"),
            ("wrong", (wrong_cert, wrong_key), "hostname mismatch")]:
        bad = receivers(cert, key)
        topic = sns.create_topic(Name=f"tls-{name}")["TopicArn"]
        url = f"https://localhost:{bad.server_address[1]}/hook" if name == "wrong" else \
            f"https://127.0.0.1:{bad.server_address[1]}/hook"
        sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=url)
        assert wait_for(lambda: bad.handshakes >= 2), "the delivery was not attempted and retried"
        assert bad.received == []
        line = wait_for(lambda: [ln for ln in server.log_text().splitlines()
                                 if "sns_webhook_failed" in ln and str(bad.server_address[1]) in ln])
        assert line and reason in line[0], server.tail()

    # An https subscription needs an https endpoint, and the other way round.
    topic = sns.create_topic(Name="tls-mismatch")["TopicArn"]
    for proto, ep in (("https", "http://127.0.0.1:1/x"), ("http", "https://127.0.0.1:1/x")):
        with pytest.raises(sns.exceptions.InvalidParameterException):
            sns.subscribe(TopicArn=topic, Protocol=proto, Endpoint=ep)


def test_unusable_ca_file_stops_the_server(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("no certificates here\n")
    rc, out = refused_start(tmp_path / "d", "--sns-webhook-ca", str(bad))
    assert rc != 0 and "sns_webhook_ca_failed" in out, out
