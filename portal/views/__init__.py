from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import broker_error, database_error
from portal.selectors import worker_seconds_since_heartbeat

# Beat runs the heartbeat every 30 s by default; a worker silent for 3 beats is down.
WORKER_STALE_AFTER_SECONDS = 90


@require_GET
def home(request):
    seconds = worker_seconds_since_heartbeat()
    return render(
        request,
        "portal/home.html",
        {
            "worker_seconds": None if seconds is None else int(seconds),
            "worker_alive": seconds is not None and seconds < WORKER_STALE_AFTER_SECONDS,
        },
    )


@never_cache
@require_GET
def health_live(request):
    """The process is up and serving; no dependency is touched."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health_ready(request):
    """Ready to serve: the database and the broker answer. 503 names what does not."""
    checks = {"database": database_error(), "broker": broker_error(timeout=2.0)}
    ready = not any(checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: "ok" if error is None else "failing" for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
