"""`manage.py run_demo` on a fresh machine's defaults: SQLite and the embedded broker.

It comes up seeded, the simulated core's updates reach the linked customer's chat, and
Ctrl-C stops every process it started.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLEARED = {
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "MESSENGER_GRAPH_API_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "LOG_FORMAT",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in threads:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_for(predicate, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def control(base: str, path: str) -> dict:
    return httpx.get(f"{base}/sandbox/api{path}", timeout=5).json()


@pytest.fixture
def demo_env(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DJANGO_SETTINGS_MODULE="bankside.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        EMBEDDED_BROKER_DIR=str(tmp_path / "broker"),
        DEMO_STATE_DIR=str(tmp_path / "state"),
        DEMO_PORT=str(port),
        DEMO_SIMULATOR_RATE="2",
    )
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr
    return env, f"http://127.0.0.1:{port}"


def test_the_demo_comes_up_seeded_and_ctrl_c_leaves_nothing_running(demo_env):
    env, base = demo_env
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    started: set[int] = set()
    try:
        assert wait_for(lambda: any("Stop with Ctrl-C." in line for line in lines), 240), "".join(
            lines[-60:]
        )
        output = "".join(lines)
        for url in ("/staff/", "/sandbox/", "/my/harbour/", "/api/v1/docs/"):
            assert f"{base}{url}" in output
        for login in ("demo-admin", "demo-operator", "demo-auditor", "demo-platform", "ben"):
            assert login in output
        assert "TOTP codes" in output

        users = control(base, "/pages/100200300400/users")["users"]
        ben = next(u for u in users if u["name"] == "Ben Carter")

        def updates_reached_ben():
            """Plain texts the bank sent Ben besides the link's confirmation: the updates.

            (The answer to his first message is a Log In button, not a plain text.)
            """
            thread = control(base, f"/pages/100200300400/users/{ben['psid']}/thread")
            sent = [m["body"].get("text") for m in thread["messages"] if m["direction"] == "out"]
            texts = [t for t in sent if isinstance(t, str)]
            return [t for t in texts if not t.startswith("You're linked")]

        assert wait_for(updates_reached_ben, 180, interval=1.0), "".join(
            line for line in lines if "Error" in line or "simulat" in line
        )[-4000:]
        started = descendants(demo.pid)
        assert len(started) >= 3  # the portal, the worker (with its pool) and the simulator
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
        reader.join(timeout=10)

    assert demo.returncode == 0, "".join(lines[-40:])
    assert "bankside demo stopped." in "".join(lines)
    wait_for(lambda: not any(running(p) for p in started), 20)
    assert [p for p in started if running(p)] == []
