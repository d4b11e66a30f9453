"""The broker commands of the switchboard binary (queue, send, recv, dlq, stats, tail, stream,
append, publish) against a running `switchboard serve`, as an operator would type them."""

import os
import signal
import subprocess
import time

import pytest

from conftest import binary

TIMEOUT = 30


@pytest.fixture
def sb(server_factory):
    server = server_factory(kind="switchboard")
    addr = f"127.0.0.1:{server.port}"

    def run(*args, stdin=None, rc=0):
        p = subprocess.run([binary("switchboard"), *args, "--addr", addr], input=stdin,
                           capture_output=True, timeout=TIMEOUT)
        assert p.returncode == rc, f"{args}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p.stdout.decode(), p.stderr.decode()

    run.addr = addr
    return run


def test_queue_send_recv_ack_stats(sb):
    assert sb("queue", "create", "jobs", "--visibility", "60000")[0] == "jobs\n"
    assert sb("queue", "list")[0] == "jobs\n"
    msg_id = sb("send", "jobs", "first", "--attr", "color=red")[0].strip()
    assert len(msg_id) == 36
    sb("send", "jobs", stdin=b"second from stdin")
    out, _ = sb("recv", "jobs", "--max", "10", "--ack", "--verbose")
    assert "first" in out and "second from stdin" in out and "color=red" in out
    assert f"id={msg_id}" in out
    # Acknowledged: nothing left, not even in flight.
    assert sb("recv", "jobs")[0] == ""
    stats = sb("queue", "stats", "jobs")[0]
    assert "sent             2" in stats and "deleted          2" in stats
    assert "in_flight        0" in stats
    table = sb("stats")[0]
    assert table.splitlines()[0].split()[:3] == ["QUEUE", "VISIBLE", "IN_FLIGHT"]
    assert table.splitlines()[1].split()[0] == "jobs"
    _, err = sb("recv", "missing", rc=1)
    assert "NOT_FOUND" in err and "missing" in err
    sb("queue", "delete", "jobs")
    assert sb("queue", "list")[0] == ""
    _, err = sb("queue", "frobnicate", rc=2)
    assert "see switchboard --help" in err


def test_dlq_list_and_redrive(sb):
    sb("queue", "create", "dead")
    sb("queue", "create", "work", "--dlq", "dead", "--max-receives", "1", "--visibility", "0")
    for i in range(3):
        sb("send", "work", f"m{i}", "--attr", f"kind={'x' if i % 2 else 'y'}")
    assert len(sb("recv", "work", "--max", "10")[0].splitlines()) == 3
    assert sb("recv", "work", "--max", "10")[0] == ""  # moved to the DLQ
    deadline = time.monotonic() + 10  # ... durably, a moment after the receive answered
    while "visible          3" not in sb("queue", "stats", "dead")[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    out = sb("dlq", "list", "dead")[0]
    assert "dead-letter queue of: work" in out and "# 3 message(s)" in out
    out = sb("dlq", "redrive", "dead", "--dry-run", "--attr", "kind=y")[0]
    assert "2 message(s) would be redriven" in out and "m0" in out and "m2" in out
    assert "m1" not in out
    # The dry run moved nothing.
    assert "# 3 message(s)" in sb("dlq", "list", "dead")[0]
    out = sb("dlq", "redrive", "dead")[0]
    assert "completed, 3 of 3 moved" in out
    back = sorted(sb("recv", "work", "--max", "10", "--ack")[0].split())
    assert back == ["m0", "m1", "m2"]


def test_tail_follows_a_queue(sb):
    sb("queue", "create", "feed")
    p = subprocess.Popen([binary("switchboard"), "tail", "feed", "--ack", "--addr", sb.addr],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        sb("send", "feed", "one")
        sb("send", "feed", "two")
        deadline = time.monotonic() + 10
        lines = []
        os.set_blocking(p.stdout.fileno(), False)
        while len(lines) < 2 and time.monotonic() < deadline:
            chunk = p.stdout.read()
            if chunk:
                lines += chunk.decode().split()
            time.sleep(0.05)
        assert lines == ["one", "two"]
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
    assert "visible          0" in sb("queue", "stats", "feed")[0]


class Follower:
    """A `switchboard tail ...` running in the background; lines() collects its stdout and
    stop() interrupts it like Ctrl-C and returns its exit code."""

    def __init__(self, sb, *args):
        self.p = subprocess.Popen([binary("switchboard"), "tail", *args, "--addr", sb.addr],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.set_blocking(self.p.stdout.fileno(), False)
        os.set_blocking(self.p.stderr.fileno(), False)
        self.out = ""
        self.err = ""

    def _read(self):
        for name, f in (("out", self.p.stdout), ("err", self.p.stderr)):
            chunk = f.read()
            if chunk:
                setattr(self, name, getattr(self, name) + chunk.decode())

    def wait_for(self, pred, what):
        deadline = time.monotonic() + 10
        while not pred():
            assert self.p.poll() is None, f"tail exited {self.p.returncode}: {self.err}"
            assert time.monotonic() < deadline, f"no {what}: {self.out!r} {self.err!r}"
            time.sleep(0.05)
            self._read()

    def lines(self, n):
        self.wait_for(lambda: len(self.out.splitlines()) >= n, f"{n} lines")
        return self.out.splitlines()

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        rc = self.p.wait(10)
        self._read()
        return rc


def test_stream_commands(sb):
    assert sb("stream", "create", "events", "--partitions", "2")[0] == "events\n"
    assert sb("stream", "list")[0] == "events\n"
    out = sb("append", "events", "a", "b", "--key", "user-1")[0].splitlines()
    part = out[0].split()[0]
    assert out == [f"{part} offset=0", f"{part} offset=1"]  # one key, one partition
    assert sb("append", "events", "c", "--partition", "1")[0].startswith("partition=1 offset=")
    # From the beginning: every record, the key's partition in order.
    t = Follower(sb, "--stream", "events", "--from-beginning", "--verbose")
    try:
        lines = t.lines(6)
    finally:
        assert t.stop() == 0
    values = [line for line in lines if not line.startswith("#")]
    assert sorted(values) == ["a", "b", "c"] and values.index("a") < values.index("b")
    assert any("key=user-1" in line for line in lines)
    # A group commits what it printed, so a second run continues after it.
    t = Follower(sb, "--stream", "events", "--group", "audit")
    try:
        assert sorted(t.lines(3)) == ["a", "b", "c"]
    finally:
        assert t.stop() == 0
    stats = sb("stream", "stats", "events")[0]
    assert "records          3" in stats
    assert [ln.split()[:2] for ln in stats.splitlines() if ln.startswith("audit")] == \
        [["audit", "0"]]
    sb("append", "events", "d", "--partition", "0")
    t = Follower(sb, "--stream", "events", "--group", "audit")
    try:
        assert t.lines(1) == ["d"]
        time.sleep(0.3)
        sb("append", "events", "e", "--partition", "1")
        assert t.lines(2) == ["d", "e"]
    finally:
        assert t.stop() == 0
    assert "events" in sb("stats")[0]
    _, err = sb("tail", "--stream", "nope", rc=1)
    assert "NOT_FOUND" in err and "nope" in err
    _, err = sb("append", "nope", "x", rc=1)
    assert "NOT_FOUND" in err
    _, err = sb("tail", "--stream", "events", "--partition", "5", rc=1)
    assert "INVALID_ARGUMENT" in err
    sb("stream", "delete", "events")
    assert sb("stream", "list")[0] == ""


def test_publish_reaches_tail_channel(sb):
    t = Follower(sb, "--channel", "alerts", "--pattern", "news.*", "--verbose")
    try:
        t.wait_for(lambda: "# subscribed to 1 channel(s) and 1 pattern(s)" in t.err,
                   "subscription")
        assert sb("publish", "--channel", "alerts", "fire")[0] == "1\n"
        assert sb("publish", "--channel", "news.tech", stdin=b"release")[0] == "1\n"
        assert sb("publish", "--channel", "elsewhere", "nobody")[0] == "0\n"
        assert t.lines(4) == ["# channel=alerts", "fire", "# channel=news.tech pattern=news.*",
                              "release"]
    finally:
        assert t.stop() == 0
    # The server notices the subscriber is gone.
    deadline = time.monotonic() + 10
    while "0 subscriber(s)" not in sb("stats")[0]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _, err = sb("publish", "alerts", rc=2)
    assert "publish --channel" in err
