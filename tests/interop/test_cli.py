"""The broker commands of the switchboard binary (queue, send, recv, dlq, stats, tail) against a
running `switchboard serve`, as an operator would type them."""

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
