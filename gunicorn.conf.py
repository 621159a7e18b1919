"""How gunicorn serves bankside in production (read from the working directory).

`WEB_CONCURRENCY` worker processes (2) of `WEB_THREADS` threads (16) each: threads let a
process group the API posts of one bank that arrive together into one transaction
(`notifications.services.ingest_groups`). The access log goes to standard output, one
line a request, redacted and with its request id (`core.access_log`). Options given
on the command line override these.
"""

import os


def _count(name: str, default: int, *, most: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise SystemExit(f"{name} must be a whole number from 1 to {most}; got {raw!r}.")
    return value


# The production entry point: settings a shell left unset are production's.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.production")

wsgi_app = "bankside.wsgi:application"
bind = ["0.0.0.0:8000"]
workers = _count("WEB_CONCURRENCY", 2, most=64)
threads = _count("WEB_THREADS", 16, most=256)
accesslog = "-"
logger_class = "core.access_log.AccessLogger"
# X-Forwarded-Proto is trusted from any address: only the TLS proxy in front, which sets
# it, may reach this port.
forwarded_allow_ips = "*"
