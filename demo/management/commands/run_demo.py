import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from core.health import broker_description

READY_WAIT_SECONDS = 120
TOTP_PERIOD_SECONDS = 30
STOP_WAIT_SECONDS = 15


def _die_with_parent() -> None:
    """On Linux, have the kernel stop a child when the demo process goes away."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Command(BaseCommand):
    help = (
        "Run the demo until Ctrl-C: the portal with the sandbox, a Celery worker with beat, "
        "the seeded demo bank (seed_demo) and the core-banking simulator (simulate_core). "
        "Uses PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set, otherwise a "
        "SQLite file and an embedded broker under var/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument(
            "--simulator-rate",
            type=float,
            default=float(os.environ.get("DEMO_SIMULATOR_RATE", "0.3")),
            help="Events per second from the core simulator; 0 leaves it off.",
        )

    def handle(self, *args, host: str, port: int, simulator_rate: float, **options):
        if not 1 <= port <= 65535:
            raise CommandError(f"--port must be between 1 and 65535, got {port}.")
        if not 0 <= simulator_rate <= 50:
            raise CommandError(f"--simulator-rate must be from 0 to 50, got {simulator_rate:g}.")
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
        base = f"http://{shown_host}:{port}"
        env = dict(os.environ)
        env.setdefault("PUBLIC_BASE_URL", base)
        if settings.SANDBOX_ENABLED:
            env.setdefault("MESSENGER_GRAPH_API_URL", f"{base}/sandbox/graph")
        var = Path(os.environ.get("DEMO_STATE_DIR") or settings.BASE_DIR / "var")
        var.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        try:
            self._start("worker", self._worker_argv(var), {"LOG_LEVEL": "WARNING", **env})
            self._start(
                "web",
                [sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
                env,
            )
            self._wait_until_ready(base)
            seeded = settings.SANDBOX_ENABLED
            if seeded:
                call_command(
                    "seed_demo", url=base, no_summary=True, stdout=self.stdout, stderr=self.stderr
                )
                if simulator_rate > 0:
                    self._start("simulator", self._simulator_argv(base, simulator_rate), env)
            self._banner(base, seeded=seeded, simulator_rate=simulator_rate)
            signal.signal(signal.SIGINT, stop)
            signal.signal(signal.SIGTERM, stop)
            period = None
            while not stopping:
                self._check_children()
                if seeded:
                    period = self._codes_when_they_change(period)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop_children()
        self.stdout.write("bankside demo stopped.")

    def _start(self, name: str, argv: list[str], env: dict) -> None:
        self.processes[name] = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv, env=env, cwd=settings.BASE_DIR, preexec_fn=_die_with_parent
        )

    def _worker_argv(self, var) -> list[str]:
        """One worker process does everything: beat, and every queue work is routed to
        (urgent, routine and conversation delivery, and the housekeeping)."""
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bankside",
            "worker",
            "--beat",
            "--queues",
            ",".join(current_app.amqp.queues),
            "--loglevel",
            "WARNING",
            "--concurrency",
            "2",
            "--hostname",
            "demo@%h",
            "--schedule",
            str(var / "celerybeat-schedule"),
        ]

    def _simulator_argv(self, base: str, rate: float) -> list[str]:
        return [
            sys.executable,
            "manage.py",
            "simulate_core",
            "--url",
            base,
            "--rate",
            f"{rate:g}",
            "--customers",
            "4",
            "--fraud-every",
            "20",
            "--tally-every",
            "60",
        ]

    def _wait_until_ready(self, base: str) -> None:
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while time.monotonic() < deadline:
            self._check_children()
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise CommandError(f"The portal did not answer at {base} within {READY_WAIT_SECONDS} s.")

    def _check_children(self) -> None:
        simulator = self.processes.get("simulator")
        if simulator is not None and simulator.poll() is not None:
            self.stderr.write(
                f"The core simulator stopped (exit {simulator.returncode}); the demo goes on. "
                "Start it again with `.venv/bin/python manage.py simulate_core`."
            )
            del self.processes["simulator"]
        exited = [name for name, proc in self.processes.items() if proc.poll() is not None]
        if exited:
            raise CommandError(f"The demo's {', '.join(exited)} process stopped.")

    def _codes_when_they_change(self, period: int | None) -> int:
        """Print the staff's fresh TOTP codes each time the 30-second period turns."""
        now = int(time.time() // TOTP_PERIOD_SECONDS)
        if period is not None and now != period:
            call_command("seed_demo", codes=True, stdout=self.stdout, stderr=self.stderr)
        return now

    def _stop_children(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _banner(self, base: str, *, seeded: bool, simulator_rate: float) -> None:
        database = settings.DATABASES["default"]
        lines = [
            self.style.SUCCESS("\nbankside demo is running"),
            f"  Staff portal:       {base}/staff/",
        ]
        if seeded:
            lines += [
                f"  Sandbox chat:       {base}/sandbox/",
                f"  Customer dashboard: {base}/my/harbour/",
            ]
        lines += [
            f"  API docs:           {base}/api/v1/docs/",
            f"  Database:           {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}",
            f"  Broker:             {broker_description()}",
        ]
        if seeded and simulator_rate:
            lines.append(
                f"  Core simulator:     {simulator_rate:g} events/s for the demo customers "
                "(manage.py simulate_core)"
            )
        self.stdout.write("\n".join(lines))
        if seeded:
            call_command("seed_demo", logins=True, stdout=self.stdout, stderr=self.stderr)
        self.stdout.write("  Stop with Ctrl-C.\n")
