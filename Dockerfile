FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# Static files are collected at build time with throw-away settings values: nothing here
# reaches the running container, which reads its own environment.
RUN SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    PSEUDONYM_KEYS="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    AUDIT_CHECKPOINT_SIGNING_KEY="$(python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')" \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    ALLOWED_HOSTS=build DJANGO_SETTINGS_MODULE=bankside.settings.production \
    python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 bankside && mkdir -p /app/var && chown bankside /app/var

USER bankside
ENV DJANGO_SETTINGS_MODULE=bankside.settings.production
EXPOSE 8000
# gunicorn.conf.py: the application, the address, WEB_CONCURRENCY and WEB_THREADS, the access log.
CMD ["gunicorn"]
