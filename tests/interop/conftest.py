"""pytest fixtures: start a real switchboard (or sb-testserver) on a random loopback port,
learn the port from its `event=listening` log line, and at teardown stop it with SIGTERM and
check that it exited 0 with no sanitizer report in its log.

Binaries come from the environment (the CMake file sets both):
  SB_BIN         path of switchboard        (default: <repo>/build/asan/switchboard)
  SB_TESTSERVER  path of sb-testserver      (default: <repo>/build/asan/tests/sb-testserver)
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import env_path  # noqa: E402

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


def binary(kind):
    if kind == "switchboard":
        path = env_path("SB_BIN", "build/asan/switchboard")
    elif kind == "testserver":
        path = env_path("SB_TESTSERVER", "build/asan/tests/sb-testserver")
    elif kind == "items":
        path = env_path("SB_ITEMS", "build/asan/examples/items")
    elif kind == "interop":
        path = env_path("SB_INTEROP", "build/asan/examples/interop")
    else:
        raise ValueError(kind)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{kind} binary not found or not executable: {path} "
                    f"(set SB_BIN / SB_TESTSERVER)")
    return path


def server_env():
    env = dict(os.environ)
    # Sanitizer reports go to stderr (the log). Keep a caller's ASAN_OPTIONS, but make sure
    # leaks are checked and UBSan prints stacks.
    asan = env.get("ASAN_OPTIONS", "")
    if "detect_leaks" not in asan:
        asan = (asan + ":" if asan else "") + "detect_leaks=1"
    env["ASAN_OPTIONS"] = asan
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


class Server:
    """One running server process."""

    def __init__(self, kind, args, workdir, name):
        self.kind = kind
        self.args = list(args)
        self.workdir = str(workdir)
        self.name = name
        self.log_path = os.path.join(self.workdir, f"{name}.log")
        self.proc = None
        self.port = None
        self.listening_line = None
        self.returncode = None
        self.checked = False

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        cmd = [binary(self.kind)]
        if self.kind == "switchboard":
            cmd.append("serve")
        return cmd + ["--http", "127.0.0.1:0", "--threads", "2"] + self.args

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        cmd = self.command()
        self.log = open(self.log_path, "wb")
        # cwd = the test's tmp dir, so a default ./data lands there.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir,
                                     env=server_env())
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log_text()
            for line in text.splitlines():
                if "event=listening" in line:
                    m = re.search(r"\bport=(\d+)", line)
                    if m:
                        self.port = int(m.group(1))
                        self.listening_line = line
                        return self
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self.checked = True
                pytest.fail(f"server exited with {self.proc.returncode} before listening: "
                            f"{cmd}\n{self.tail()}")
            time.sleep(0.02)
        self.kill()
        pytest.fail(f"server did not log event=listening within {START_TIMEOUT}s: {cmd}\n"
                    f"{self.tail()}")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self, n=60):
        lines = self.log_text().splitlines()
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + \
            "\n".join(lines[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for exit; returns the exit code, or None when it is still running."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self):
        if self.alive():
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Graceful stop; returns the exit code (None if it had to be killed)."""
        if self.alive():
            self.send_signal(sig)
            rc = self.wait(timeout)
            if rc is None:
                self.kill()
                return None
            return rc
        if self.proc is not None:
            self.returncode = self.proc.wait()
        return self.returncode

    def check_clean(self, rc="stop"):
        """Stops the server (if running) and asserts a clean exit: code 0, no sanitizer
        report in the log."""
        if rc == "stop":
            rc = self.stop()
        self.checked = True
        try:
            self.log.close()
        except Exception:  # noqa: BLE001
            pass
        text = self.log_text()
        assert rc is not None, f"server did not exit within {STOP_TIMEOUT}s of SIGTERM " \
                               f"(killed)\n{self.tail()}"
        bad = [m for m in SANITIZER_MARKERS if m in text]
        assert not bad, f"sanitizer report in server log ({bad})\n{self.tail(120)}"
        assert rc == 0, f"server exit code {rc}, want 0\n{self.tail()}"


@pytest.fixture
def server_factory(tmp_path, request):
    """start(kind="testserver", *extra_flags) -> a running Server. Every server started is
    stopped and checked at teardown (unless the test already did)."""
    servers = []

    def start(*args, kind="testserver"):
        name = f"{kind}-{len(servers)}"
        s = Server(kind, [str(a) for a in args], tmp_path, name)
        servers.append(s)
        return s.start()

    yield start

    errors = []
    for s in servers:
        if s.checked:
            continue
        try:
            s.check_clean()
        except AssertionError as e:
            errors.append(f"[{s.name} {' '.join(s.args)}] {e}")
        except Exception as e:  # noqa: BLE001
            s.kill()
            errors.append(f"[{s.name}] {type(e).__name__}: {e}")
    if errors:
        pytest.fail("server teardown check failed:\n" + "\n\n".join(errors), pytrace=False)


@pytest.fixture
def testserver(server_factory):
    """A default sb-testserver."""
    return server_factory()


@pytest.fixture
def sbserver(server_factory):
    """A default `switchboard serve`."""
    return server_factory(kind="switchboard")
