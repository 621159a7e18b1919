from urllib.parse import urlsplit

import psycopg2
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.health import broker_error, database_error

HOW_TO_START = {
    "postgresql": (
        "Start PostgreSQL, then run this again:\n"
        "  Debian/Ubuntu:  sudo pg_ctlcluster --skip-systemctl-redirect "
        "$(ls /etc/postgresql) main start\n"
        "  Docker:         docker compose up -d postgres\n"
        "or point DATABASE_URL at a server you have (postgres://USER:PASSWORD@HOST:5432/DB)."
    ),
    "redis": (
        "Start Redis, then run this again:\n"
        "  Debian/Ubuntu:  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 "
        "--save '' --appendonly no\n"
        "  Docker:         docker compose up -d redis\n"
        "or point REDIS_URL at a server you have (redis://HOST:6379/0)."
    ),
}


class Command(BaseCommand):
    help = "Check that the database and the Celery broker answer; say what to start if not."

    def handle(self, *args, **options):
        problems = []
        db = settings.DATABASES["default"]
        if db["ENGINE"] == settings.POSTGRESQL_ENGINE:
            where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
            # The server's maintenance database: the test run creates its own database.
            try:
                psycopg2.connect(
                    dbname="postgres",
                    user=db.get("USER") or None,
                    password=db.get("PASSWORD") or None,
                    host=db.get("HOST") or None,
                    port=db.get("PORT") or None,
                    connect_timeout=3,
                ).close()
                self.stdout.write(f"PostgreSQL at {where}: ok")
            except psycopg2.Error as exc:
                problems.append(
                    f"PostgreSQL is not answering at {where} ({str(exc).strip()}).\n"
                    + HOW_TO_START["postgresql"]
                )
        else:
            error = database_error()
            if error:
                problems.append(f"The database is not usable: {error}")
            else:
                self.stdout.write("SQLite database: ok")

        url = settings.CELERY_BROKER_URL
        if url.startswith(("redis://", "rediss://")):
            parts = urlsplit(url)
            where = f"{parts.hostname}:{parts.port or 6379}{parts.path}"
            try:
                redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
                self.stdout.write(f"Redis at {where}: ok")
            except redis.RedisError as exc:
                problems.append(
                    f"Redis is not answering at {where} ({exc}).\n" + HOW_TO_START["redis"]
                )
        else:
            error = broker_error()
            if error:
                problems.append(f"The Celery broker is not usable: {error}")
            else:
                self.stdout.write("Embedded broker: ok")

        if problems:
            raise CommandError("\n\n".join(problems))
