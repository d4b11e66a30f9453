#!/usr/bin/python3
"""kill -9 crash test of the journal (src/log/journal.c).

    journal_crash_test.py <journal_crash_helper> [cycles]

Each cycle starts the helper appending with fsync=always from 4 threads (it prints every
acknowledged offset), kills it with SIGKILL 0-300 ms after its first acknowledgement, then runs the helper's
verify mode: recovery must succeed, every stored record must be intact, and every record
acknowledged in ANY cycle so far must still be stored, byte for byte. Cycles default to 20
(SB_CRASH_CYCLES overrides); the whole run stays well under 30 s.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    helper = sys.argv[1]
    cycles = int(os.environ.get("SB_CRASH_CYCLES", sys.argv[2] if len(sys.argv) > 2 else 20))
    seed = int(os.environ.get("SB_CRASH_SEED", time.time_ns() % 1000000))
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="sb-journal-crash.")
    jdir = os.path.join(work, "journal")
    acks = os.path.join(work, "acks.txt")
    print(f"crash test: {cycles} cycles, seed {seed}, dir {work}", flush=True)
    ok = True
    total_acks = 0
    with open(acks, "ab") as ackf:
        for cycle in range(cycles):
            start = os.path.getsize(acks)
            p = subprocess.Popen([helper, "append", jdir, str(cycle)], stdout=ackf)
            # Kill at a random moment after the first acknowledgement of this cycle, so every
            # cycle dies in the middle of appends rather than during start-up.
            deadline = time.monotonic() + 5
            while os.path.getsize(acks) == start and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rnd.uniform(0.0, 0.3))
            p.send_signal(signal.SIGKILL)
            p.wait()
            ackf.flush()
            if p.returncode != -signal.SIGKILL:
                print(f"cycle {cycle}: helper exited with {p.returncode} before the kill")
                ok = False
                break
            # A line cut by the kill (a partial write(2)) is not an acknowledgement we can
            # rely on: drop a trailing partial line.
            with open(acks, "rb") as f:
                data = f.read()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                os.truncate(acks, cut)
                ackf.seek(cut)
            total_acks = data.count(b"\n")
            v = subprocess.run([helper, "verify", jdir, acks], capture_output=True, text=True)
            sys.stdout.write(f"cycle {cycle}: {v.stdout.strip()}\n")
            if v.returncode != 0:
                sys.stdout.write(v.stderr)
                ok = False
                break
    if ok and total_acks == 0:
        print("no acknowledgements at all: the test proved nothing")
        ok = False
    if ok:
        shutil.rmtree(work)
        print(f"crash test passed: {cycles} kills, {total_acks} acknowledged records verified")
        return 0
    print(f"crash test FAILED (seed {seed}); work dir kept: {work}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
