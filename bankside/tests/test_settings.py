import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "bankside.settings.production",
    "SECRET_KEY": "p" * 20 + "9Xq!r7@Lm#2vZ$kW8^bN&cT4*yH6(fJ3)gD5",
    "DATABASE_URL": "postgres://bankside:pw@db.internal:5432/bankside",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "ALLOWED_HOSTS": "bank.example",
    "PUBLIC_BASE_URL": "https://bank.example",
    "AUDIT_CHECKPOINT_SIGNING_KEY": "cHJvZHVjdGlvbi1jaGVja3BvaW50LWtleS0zMmJ5dGU=",
    "PSEUDONYM_KEYS": "production-pseudonym-key-0123456789-abcdefghijklmnop",
}


def manage(*args, env_overrides=None):
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEYS",
            "AUDIT_CHECKPOINT_SIGNING_KEY",
            "PSEUDONYM_KEYS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(env_overrides or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_settings():
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_its_secrets():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in {"SECRET_KEY", "REDIS_URL"}}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "SECRET_KEY, REDIS_URL, FIELD_ENCRYPTION_KEYS" in result.stderr


def test_production_refuses_to_start_without_a_checkpoint_signing_key():
    keys = Fernet.generate_key().decode()
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys, "AUDIT_CHECKPOINT_SIGNING_KEY": ""}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "AUDIT_CHECKPOINT_SIGNING_KEY" in result.stderr


def test_production_refuses_to_start_without_pseudonym_keys():
    keys = Fernet.generate_key().decode()
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys, "PSEUDONYM_KEYS": ""}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "need these environment variables: PSEUDONYM_KEYS" in result.stderr


def test_production_refuses_a_short_pseudonym_key():
    keys = Fernet.generate_key().decode()
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys, "PSEUDONYM_KEYS": "a" * 40 + ",short"}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "Each of PSEUDONYM_KEYS must be at least 32" in result.stderr


@pytest.mark.parametrize("address", ["http://bank.example", "http://localhost:8000"])
def test_production_refuses_a_public_address_without_https(address):
    keys = Fernet.generate_key().decode()
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys, "PUBLIC_BASE_URL": address}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "PUBLIC_BASE_URL must be https://<host name> in production" in result.stderr


def test_production_refuses_a_malformed_checkpoint_signing_key():
    keys = Fernet.generate_key().decode()
    env = {
        **PRODUCTION_ENV,
        "FIELD_ENCRYPTION_KEYS": keys,
        "AUDIT_CHECKPOINT_SIGNING_KEY": "c2hvcnQ=",
    }

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "raw 32-byte Ed25519 private key" in result.stderr


def test_production_refuses_to_relax_two_factor_sign_in_for_staff():
    keys = Fernet.generate_key().decode()
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys, "STAFF_TWO_FACTOR_FOR_ALL": "false"}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "production requires a second factor of every staff member" in result.stderr


def test_production_never_mounts_the_sandbox():
    keys = Fernet.generate_key().decode()
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys, "SANDBOX_ENABLED": "true"}

    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SANDBOX_ENABLED)",
        env_overrides=env,
    )

    assert result.stdout.strip() == "False", result.stderr


def test_production_never_calls_private_addresses_and_the_demo_does():
    keys = Fernet.generate_key().decode()
    production = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": keys}
    read = (
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.OUTBOUND_ALLOW_PRIVATE_HOSTS)",
    )

    forced = manage(*read, env_overrides={**production, "OUTBOUND_ALLOW_PRIVATE_HOSTS": "true"})
    local = manage(*read, env_overrides={"DJANGO_SETTINGS_MODULE": "bankside.settings.local"})

    assert forced.stdout.strip() == "False", forced.stderr
    assert local.stdout.strip() == "True", local.stderr


READ_DATABASE = (
    "shell",
    "--no-imports",
    "-c",
    "from django.conf import settings; d = settings.DATABASES['default']; "
    "print(d.get('DISABLE_SERVER_SIDE_CURSORS', False), 'options' in d.get('OPTIONS', {}), "
    "settings.DATABASE_PREPARED_STATEMENTS, d['CONN_MAX_AGE'])",
)


def test_behind_pgbouncer_nothing_outlives_a_transaction_on_the_server():
    """Transaction pooling: no cursor held across transactions, no statement prepared for
    a session, no startup parameter PgBouncer refuses; connections to it still kept."""
    production = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}

    pooled = manage(*READ_DATABASE, env_overrides={**production, "DATABASE_POOLER": "pgbouncer"})
    direct = manage(*READ_DATABASE, env_overrides=production)

    assert pooled.stdout.split() == ["True", "False", "False", "60"], pooled.stderr
    assert direct.stdout.split() == ["False", "True", "True", "60"], direct.stderr


def test_prepared_statements_behind_pgbouncer_are_refused():
    production = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    env = {**production, "DATABASE_POOLER": "pgbouncer", "DATABASE_PREPARED_STATEMENTS": "true"}

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "cannot work behind PgBouncer in transaction mode" in result.stderr


def test_an_unknown_pooler_is_refused():
    result = manage("check", env_overrides={"DATABASE_POOLER": "pgpool"})

    assert result.returncode != 0
    assert "DATABASE_POOLER must be empty (PostgreSQL itself) or pgbouncer" in result.stderr


def test_unsupported_database_is_refused():
    result = manage("check", env_overrides={"DATABASE_URL": "mysql://root@127.0.0.1/bankside"})

    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_check_services_says_what_to_start_when_servers_are_down():
    result = manage(
        "check_services",
        env_overrides={
            "DJANGO_SETTINGS_MODULE": "bankside.settings.test",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:1/bankside",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )

    assert result.returncode != 0
    assert "PostgreSQL is not answering at 127.0.0.1:1" in result.stderr
    assert "Redis is not answering at 127.0.0.1:1/0" in result.stderr
    assert "pg_ctlcluster" in result.stderr and "redis-server" in result.stderr


def test_check_services_passes_against_the_test_servers():
    result = manage(
        "check_services", env_overrides={"DJANGO_SETTINGS_MODULE": "bankside.settings.test"}
    )

    assert result.returncode == 0, result.stderr
    assert "PostgreSQL at" in result.stdout and "Redis at" in result.stdout
