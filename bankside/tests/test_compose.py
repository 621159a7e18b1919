"""docker-compose.yml's production shape: every queue work is routed to has a worker
service, one beat, and the long-running services reach PostgreSQL through PgBouncer in
transaction mode with the settings that go with it; migrations go to PostgreSQL itself.
(`make compose-config` checks that Compose accepts the file.)"""

import re
import shlex
from pathlib import Path

import yaml

from bankside.celery import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = dict(
    line.split("=", 1)
    for line in (ROOT / ".env.example").read_text().splitlines()
    if line and not line.startswith("#")
)


def argv(service: str) -> list[str]:
    command = SERVICES[service].get("command", [])
    return shlex.split(command) if isinstance(command, str) else command


def consumed(service: str) -> set[str]:
    words = argv(service)
    return set(words[words.index("--queues") + 1].split(",")) if "--queues" in words else set()


def workers() -> list[str]:
    return [name for name in SERVICES if argv(name)[:4] == ["celery", "-A", "bankside", "worker"]]


def test_every_queue_has_a_worker_service_of_its_own():
    by_service = {name: consumed(name) for name in workers()}

    assert by_service == {
        "worker-urgent": {"bankside.urgent"},
        "worker-routine": {"bankside.routine"},
        "worker-conversation": {"bankside.conversation"},
        "worker-default": {"bankside"},
    }
    assert set().union(*by_service.values()) == set(app.amqp.queues)


def test_each_worker_answers_its_health_check_by_its_own_name():
    for name in workers():
        (hostname,) = re.findall(r"--hostname (\w+)@%h", SERVICES[name]["command"])
        check = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert f"--destination {hostname}@$$HOSTNAME" in check


def test_exactly_one_beat():
    beats = [name for name in SERVICES if argv(name)[:4] == ["celery", "-A", "bankside", "beat"]]

    assert beats == ["beat"]
    assert "deploy" not in SERVICES["beat"]  # no replicas


def test_the_app_reaches_postgresql_through_pgbouncer_and_migrations_do_not():
    assert ENV_EXAMPLE["DATABASE_URL"].endswith("@pgbouncer:6432/bankside")
    assert ENV_EXAMPLE["DATABASE_POOLER"] == "pgbouncer"
    assert "DATABASE_PREPARED_STATEMENTS" not in ENV_EXAMPLE  # off behind PgBouncer
    for name in ["web", "beat", *workers()]:
        assert "pgbouncer" in SERVICES[name]["depends_on"], name
    migrate = SERVICES["migrate"]
    assert ENV_EXAMPLE["MIGRATE_DATABASE_URL"].endswith("@postgres:5432/bankside")
    assert migrate["environment"]["DATABASE_POOLER"] == ""
    assert "postgres" in migrate["depends_on"]


def test_pgbouncer_pools_transactions():
    entrypoint = (ROOT / "docker" / "pgbouncer" / "entrypoint.sh").read_text()

    assert SERVICES["pgbouncer"]["build"] == "./docker/pgbouncer"
    assert "pool_mode = transaction" in entrypoint
    assert "host=${PGBOUNCER_SERVER_HOST:-postgres}" in entrypoint
