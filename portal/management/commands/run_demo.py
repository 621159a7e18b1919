import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bankside.health import broker_description


def _die_with_parent() -> None:
    """On Linux, have the kernel stop a child when the demo process goes away."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Command(BaseCommand):
    help = (
        "Run the portal with a Celery worker and beat beside it, until Ctrl-C. "
        "Uses PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set, otherwise a "
        "SQLite file and an embedded broker under var/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))

    def handle(self, *args, host: str, port: int, **options):
        if not 1 <= port <= 65535:
            raise CommandError(f"--port must be between 1 and 65535, got {port}.")
        env = dict(os.environ)
        python = sys.executable
        var = settings.BASE_DIR / "var"
        var.mkdir(exist_ok=True)
        processes = {
            "worker": subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "bankside",
                    "worker",
                    "--beat",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--hostname",
                    "demo@%h",
                    "--schedule",
                    str(var / "celerybeat-schedule"),
                ],
                env=env,
                preexec_fn=_die_with_parent,
            ),
            "web": subprocess.Popen(  # noqa: S603
                [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
                env=env,
                cwd=settings.BASE_DIR,
                preexec_fn=_die_with_parent,
            ),
        }
        database = settings.DATABASES["default"]
        self.stdout.write(
            self.style.SUCCESS("\nbankside demo is starting\n")
            + f"  Staff portal:   http://{host}:{port}/staff/\n"
            + (
                f"  Sandbox chat:   http://{host}:{port}/sandbox/\n"
                if settings.SANDBOX_ENABLED
                else ""
            )
            + f"  API docs:       http://{host}:{port}/api/v1/docs/\n"
            + f"  Health:         http://{host}:{port}/health/ready\n"
            + f"  Database:       {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}\n"
            + f"  Broker:         {broker_description()}\n"
            + "  Stop with Ctrl-C.\n"
        )
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                exited = [name for name, proc in processes.items() if proc.poll() is not None]
                if exited:
                    raise CommandError(f"The demo's {', '.join(exited)} process stopped.")
                time.sleep(0.5)
        finally:
            for proc in processes.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for proc in processes.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.stdout.write("bankside demo stopped.")
