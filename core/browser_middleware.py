"""The middleware only browsers need, skipped for the machine-to-machine API.

Requests under `API_PATH_PREFIX` come from the bank's core systems with an API key: they
have no session, no staff user, no one-time password, no flash messages and no static
files. Running that middleware for them costs every API request work it never uses (a
messages store with its cookie signer, lazy users, the static-files lookup): a few
percent of a posted event's CPU. Each class here is the library's own middleware, run as
it is for every other path and passed straight through for the API.

Django's CSRF middleware is not among them: it runs for every path, as the deployment
checks require (API views are CSRF-exempt, as every DRF view is). Without the session
and authentication middleware a DRF session login finds no user: it fails closed. The
API's own middleware (request ids, HTTPS and security headers, idempotency) runs for
every path.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Message
from django.contrib.sessions.middleware import SessionMiddleware as _Session
from django.http import HttpRequest
from django_otp.middleware import OTPMiddleware as _OTP
from whitenoise.middleware import WhiteNoiseMiddleware as _WhiteNoise


class _BrowserOnly:
    """Run the middleware this is mixed into, except for API requests.

    Works for synchronous and asynchronous chains alike: `get_response` returns what the
    next handler returns, a response or an awaitable one.
    """

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if request.path_info.startswith(settings.API_PATH_PREFIX):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]  # the middleware mixed with


class WhiteNoiseMiddleware(_BrowserOnly, _WhiteNoise):  # type: ignore[misc]  # untyped library
    pass


class SessionMiddleware(_BrowserOnly, _Session):
    pass


class AuthenticationMiddleware(_BrowserOnly, _Authentication):
    pass


class OTPMiddleware(_BrowserOnly, _OTP):  # type: ignore[misc]  # untyped library
    pass


class MessageMiddleware(_BrowserOnly, _Message):
    pass
