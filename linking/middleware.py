"""The customer pages in the customer's language."""

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from linking.models import Customer
from portal.languages import is_supported, speaking, speaking_locale
from portal.models import Bank

# /link/<bank>/… (the Log In flow) and /my/<bank>/… (the sharing dashboard).
CUSTOMER_PAGE = re.compile(r"^/(?:link|my)/(?P<bank>[-a-zA-Z0-9_]+)/")
CUSTOMER_SESSION_KEY = "customer"  # what `linking.views` keeps of the signed-in customer


def customer_page_locale(request: HttpRequest, bank_slug: str) -> str:
    """The locale a customer page speaks in: the signed-in customer's own (the bank's
    record of them, the same the bot answers in), else the browser's language when
    bankside has it (Messenger's in-app browser sends the phone's), else the bank's
    default language."""
    who = request.session.get(CUSTOMER_SESSION_KEY) or {}
    bank = Bank.objects.filter(slug=bank_slug).values_list("pk", "default_locale").first()
    default = bank[1] if bank else ""
    customer_id = who.get("id")
    if bank is not None and who.get("bank") == bank_slug and isinstance(customer_id, int):
        locale = (
            Customer.objects.filter(pk=customer_id, bank_id=bank[0])
            .values_list("locale", flat=True)
            .first()
        )
        if locale:
            return speaking_locale(locale, default)
    for browser in _accepted(request.headers.get("Accept-Language", "")):
        if is_supported(browser):
            return browser
    return speaking_locale(default, "")


def _accepted(header: str) -> list[str]:
    """The languages of an Accept-Language header, most wanted first."""
    ranked = []
    for position, part in enumerate(header.split(",")[:20]):
        language, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if language and language != "*" and weight > 0:
            ranked.append((-weight, position, language.strip()))
    return [language for _, _, language in sorted(ranked)]


class CustomerLanguageMiddleware:
    """Translate the customer pages; every other page (staff, API) stays in English."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = CUSTOMER_PAGE.match(request.path_info)
        if found is None:
            return self.get_response(request)
        with speaking(customer_page_locale(request, found["bank"])) as language:
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response
