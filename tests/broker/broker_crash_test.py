#!/usr/bin/python3
"""kill -9 crash test of the broker's queues (src/broker/).

    broker_crash_test.py <broker_crash_helper> [cycles]

Each cycle runs the helper's producers and consumers (3 + 2 threads on queue "work", whose
poison messages dead-letter to "work-dlq" after 2 receives), kills it with SIGKILL 0-300 ms
after its first acknowledgement of the cycle, and runs the helper's check mode on the same
directory. Every fifth cycle stops it with SIGTERM instead: a clean shutdown in the middle
of the load, which writes the queues' index snapshots with operations in flight (the check
mode's own clean close writes them too); later cycles recover from those snapshots plus the
log after them. After every cycle, over everything acknowledged in ANY cycle so far:
  - every acknowledged send is stored (in "work" or dead-lettered in "work-dlq") unless a
    delete of it was attempted: nothing acknowledged is lost;
  - no message whose delete was acknowledged is stored: no delete is resurrected;
  - on stream "log": every acknowledged append is stored (the next offset is past it), the
    group's committed offset is at least the last acknowledged commit and never ahead of the
    log;
  - every dead-lettered message has its attributes byte-identical and its failure metadata
    set (poison messages are dead-lettered by design; others may be too, when crashes cut
    short two consumers in a row).
Cycles default to 20 (SB_CRASH_CYCLES overrides).
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # a line cut by the kill is no acknowledgement
    return data.decode().splitlines()


def main():
    helper = sys.argv[1]
    cycles = int(os.environ.get("SB_CRASH_CYCLES", sys.argv[2] if len(sys.argv) > 2 else 20))
    seed = int(os.environ.get("SB_CRASH_SEED", time.time_ns() % 1000000))
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="sb-broker-crash.")
    data = os.path.join(work, "data")
    print(f"broker crash test: {cycles} cycles, seed {seed}, dir {work}", flush=True)
    sent, deleted, tried = set(), set(), set()
    appended_max, committed_max = -1, 0
    ok = True
    for cycle in range(cycles):
        out = os.path.join(work, f"cycle{cycle}.txt")
        with open(out, "wb") as f:
            p = subprocess.Popen([helper, "run", data, str(cycle)], stdout=f)
            deadline = time.monotonic() + 10
            while os.path.getsize(out) == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rnd.uniform(0.0, 0.3))
            clean = cycle % 5 == 4
            p.send_signal(signal.SIGTERM if clean else signal.SIGKILL)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        want = 0 if clean else -signal.SIGKILL
        if p.returncode != want:
            print(f"cycle {cycle}: helper exited with {p.returncode}, want {want}")
            ok = False
            break
        for line in read_lines(out):
            tag, body = line.split(" ", 1)
            if tag == "A":
                appended_max = max(appended_max, int(body))
            elif tag == "C":
                committed_max = max(committed_max, int(body))
            else:
                {"S": sent, "D": deleted, "T": tried}[tag].add(body)
        c = subprocess.run([helper, "check", data], capture_output=True, text=True, timeout=60)
        if c.returncode != 0:
            print(f"cycle {cycle}: check failed ({c.returncode}): {c.stderr.strip()}")
            ok = False
            break
        stored, dlq, bad_dlq = set(), set(), []
        next_off, group_off = -1, -1
        for line in c.stdout.splitlines():
            tag, rest = line.split(" ", 1)
            if tag == "N":
                next_off = int(rest)
            elif tag == "G":
                group_off = int(rest)
            elif tag == "Q":
                stored.add(rest)
            else:
                body, good = rest.rsplit(" ", 1)
                dlq.add(body)
                # Poison messages end here by design; others may too, when crashes cut short
                # the consumers that received them twice (at-least-once, as SQS does).
                if good != "1":
                    bad_dlq.append(body)
        # A delete that was attempted but not acknowledged may or may not have happened.
        lost = sent - deleted - tried - stored - dlq
        resurrected = (stored | dlq) & deleted
        print(f"cycle {cycle}: acked sends {len(sent)}, acked deletes {len(deleted)}, "
              f"stored {len(stored)}, dead-lettered {len(dlq)}, lost {len(lost)}, "
              f"resurrected {len(resurrected)}, bad dlq copies {len(bad_dlq)}", flush=True)
        stream_bad = []
        if next_off <= appended_max:
            stream_bad.append(f"acknowledged append {appended_max} lost (next offset {next_off})")
        if group_off < committed_max:
            stream_bad.append(f"committed offset went back: {group_off} < {committed_max}")
        if group_off > next_off:
            stream_bad.append(f"committed offset {group_off} ahead of the log ({next_off})")
        print(f"          stream: last acked append {appended_max}, next {next_off}, "
              f"last acked commit {committed_max}, committed {group_off}", flush=True)
        for x in stream_bad:
            print(f"  {x}")
        if stream_bad:
            ok = False
            break
        if lost or resurrected or bad_dlq:
            for what, items in (("lost", lost), ("resurrected", resurrected), ("bad dlq", bad_dlq)):
                for x in sorted(items)[:10]:
                    print(f"  {what}: {x}")
            ok = False
            break
    if ok and not deleted:
        print("no delete was acknowledged in any cycle: the test exercised nothing")
        ok = False
    if ok:
        shutil.rmtree(work)
        print("PASS")
    else:
        print(f"FAIL (data kept in {work}; rerun with SB_CRASH_SEED={seed})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
