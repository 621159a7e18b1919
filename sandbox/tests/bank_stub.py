"""A minimal bank inside the tests: a webhook receiver and a Log In page.

Mounted beside the real URLs (see `urls.py` here) so the sandbox can be exercised over
real HTTP before, and independently of, the portal's own linking pages.
"""

import threading
from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseRedirect
from django.views.decorators.csrf import csrf_exempt

received: list[dict] = []
answers: list[int] = []  # status codes to answer with, in order; 200 once exhausted
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        received.clear()
        answers.clear()


@csrf_exempt
def webhook(request):
    with _lock:
        received.append({"body": request.body, "headers": dict(request.headers)})
        status = answers.pop(0) if answers else 200
    return HttpResponse("EVENT_RECEIVED", status=status)


def login(request):
    """Approve (or, with ?deny=1 in the Log In URL, refuse) and send the browser back."""
    redirect_uri = request.GET["redirect_uri"]
    if request.GET.get("deny"):
        return HttpResponseRedirect(redirect_uri)
    separator = "&" if "?" in redirect_uri else "?"
    code = f"code-for-{request.GET['account_linking_token'][:8]}"
    return HttpResponseRedirect(redirect_uri + separator + urlencode({"authorization_code": code}))
