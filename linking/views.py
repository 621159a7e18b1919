"""The customer's pages: the Messenger Log In flow and its consent screen."""

import datetime as dt
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import get_language, gettext, gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core.csp import allow_form_action
from core.middleware import client_ip
from linking import messenger_identity, oidc, receipts, selectors, services, throttle
from linking.models import Account, Consent, Customer, IdentityProvider
from linking.redirects import UnsafeRedirect, check_redirect_uri, with_params
from portal.models import Bank, MessengerIntegration
from portal.selectors import notification_settings_for

log = logging.getLogger(__name__)

FLOW_KEY = "link_flow"
CUSTOMER_KEY = "customer"
OIDC_KEY = "oidc"
AFTER_SIGN_IN_KEY = "after_sign_in"
LINKING_TOKEN_LIFETIME = timedelta(minutes=5)
PURPOSE = gettext_lazy(
    "to send you real-time updates about the accounts you choose, in Messenger, and to "
    "answer you when you ask about them there"
)


def messenger_url(bank: Bank | None) -> str:
    """The bank's conversation in Messenger (an m.me link to its Page): every customer page
    leads back there, where Messenger opened it."""
    integration = MessengerIntegration.objects.filter(bank=bank).first() if bank else None
    return f"https://m.me/{integration.page_id}" if integration else "https://m.me/"


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """A customer page: the given context, and the way back to the bank's Messenger chat."""
    return render(
        request,
        template,
        {"messenger_url": messenger_url(context.get("bank")), **context},
        status=status,
    )


def _problem(
    request: HttpRequest,
    bank: Bank | None,
    title: str,
    detail: str,
    status: int = 400,
    **extra: Any,
) -> HttpResponse:
    return _page(
        request,
        "linking/problem.html",
        {"bank": bank, "title": title, "detail": detail, **extra},
        status=status,
    )


def linking_paused(request: HttpRequest, bank: Bank) -> HttpResponse:
    """The bank has paused its Messenger updates (or has none set up): no link can be made."""
    return _problem(
        request,
        bank,
        gettext("Linking is not available right now"),
        gettext("%(bank)s has paused Messenger updates. Please try again later.")
        % {"bank": bank.name},
        status=503,
    )


def _bank(slug: str) -> tuple[Bank, MessengerIntegration | None]:
    bank = get_object_or_404(Bank, slug=slug)
    return bank, MessengerIntegration.objects.filter(bank=bank).first()


def current_customer(request, bank: Bank) -> Customer | None:
    who = request.session.get(CUSTOMER_KEY) or {}
    if who.get("bank") != bank.slug:
        return None
    return Customer.objects.filter(pk=who.get("id"), bank=bank).first()


def _flow(request, bank: Bank) -> dict | None:
    flow = request.session.get(FLOW_KEY)
    return flow if flow and flow.get("bank") == bank.slug else None


def _flow_expires_at(flow: dict[str, Any]) -> dt.datetime:
    """When Messenger's linking token runs out: its 5 minutes, counted from Log In."""
    return dt.datetime.fromisoformat(flow["started_at"]) + LINKING_TOKEN_LIFETIME


def _flow_expired(flow: dict[str, Any]) -> bool:
    return timezone.now() > _flow_expires_at(flow)


def time_limit_context(expires_at: dt.datetime) -> dict[str, Any]:
    """What the pages of a flow that runs out at `expires_at` show of its time limit."""
    left = max(0, int((expires_at - timezone.now()).total_seconds()))
    return {"flow_expires_at": expires_at, "flow_minutes_left": max(1, -(-left // 60))}


def _flow_context(flow: dict[str, Any] | None) -> dict[str, Any]:
    """What the pages of a running link flow show of its time limit."""
    return {} if flow is None else time_limit_context(_flow_expires_at(flow))


@never_cache
@require_http_methods(["GET"])
def link_start(request, bank):
    """The Log In button's URL: Messenger opens it with a linking token and redirect_uri."""
    bank, integration = _bank(bank)
    token = request.GET.get("account_linking_token", "")
    redirect_uri = request.GET.get("redirect_uri", "")
    try:
        check_redirect_uri(redirect_uri)
    except UnsafeRedirect:
        return _problem(
            request,
            bank,
            gettext("This link can't be used"),
            gettext(
                "The link did not come from Messenger. Open your bank's chat in Messenger and "
                "tap Log In again."
            ),
        )
    if not token or len(token) > 1024:
        return _problem(
            request,
            bank,
            gettext("This link can't be used"),
            gettext("The link is incomplete. Tap Log In again in Messenger."),
        )
    if selectors.linking_token_used(token):
        return _token_used(request, bank)
    if not services.linking_flows_for(bank).log_in:
        return _problem(
            request,
            bank,
            "Link from your bank's app",
            f"{bank.name} links Messenger from its own app or online banking: sign in there "
            "and choose Messenger updates.",
            status=403,
        )
    if integration is None or integration.status == MessengerIntegration.Status.PAUSED:
        return linking_paused(request, bank)
    request.session[FLOW_KEY] = {
        "bank": bank.slug,
        "token": token,
        "redirect_uri": redirect_uri,
        "page_id": integration.page_id,
        "started_at": timezone.now().isoformat(),
    }
    if current_customer(request, bank) is None:
        return redirect("linking:login", bank=bank.slug)
    return redirect("linking:consent", bank=bank.slug)


@never_cache
@require_http_methods(["GET", "POST"])
def customer_login(request, bank):
    bank, _ = _bank(bank)
    flow = _flow(request, bank)
    if flow is not None and _flow_expired(flow):
        return _restart(request, bank)
    error = ""
    username = ""
    if request.method == "POST":
        username = request.POST.get("username", "")[:150]
        ip = client_ip(request)
        if throttle.blocked(bank.slug, username, ip):
            return _page(
                request,
                "linking/login.html",
                {
                    "bank": bank,
                    "flow": flow,
                    "username": username,
                    "error": gettext(
                        "Too many attempts. For your security, sign-in is paused for 15 minutes."
                    ),
                    **_flow_context(flow),
                },
                status=429,
            )
        customer = services.directory_authenticate(
            bank=bank,
            username=username,
            password=request.POST.get("password", "")[:512],
        )
        if customer is None:
            throttle.failed(bank.slug, username, ip)
            error = gettext("That username and password don't match. Please try again.")
        else:
            throttle.succeeded(bank.slug, username, ip)
            return _sign_in(request, bank, customer)
    provider = _provider(bank)
    response = _page(
        request,
        "linking/login.html",
        {
            "bank": bank,
            "error": error,
            "flow": flow,
            "provider": provider,
            "username": username,
            "again": bool(request.session.get(AFTER_SIGN_IN_KEY)),
            **_flow_context(flow),
        },
        status=401 if error else 200,
    )
    return _allow_provider(response, provider) if provider else response


def _allow_provider(response, provider: IdentityProvider):
    """The sign-in button's form is answered with a redirect to the provider's authorization
    endpoint, which may live on another origin than its issuer. Its discovery document is
    cached, and the button needs it anyway; without it the issuer's origin is named."""
    try:
        endpoint = oidc.discovery(provider)["authorization_endpoint"]
    except oidc.OIDCError:
        endpoint = ""
    return allow_form_action(response, provider.issuer, endpoint)


def _provider(bank: Bank) -> IdentityProvider | None:
    return IdentityProvider.objects.filter(bank=bank, enabled=True).first()


def _sign_in(request, bank: Bank, customer: Customer):
    """The customer proved who they are with the bank (its identity provider or its
    directory): signed in, with the moment kept, since renewing asks for a fresh one."""
    after = request.session.pop(AFTER_SIGN_IN_KEY, None)
    request.session.cycle_key()
    request.session[CUSTOMER_KEY] = {
        "id": customer.pk,
        "bank": bank.slug,
        "authenticated_at": timezone.now().isoformat(),
    }
    if _flow(request, bank):
        return redirect("linking:consent", bank=bank.slug)
    if after and after.get("bank") == bank.slug and _own_path(after.get("path"), bank):
        return HttpResponseRedirect(after["path"])
    return redirect("linking:dashboard", bank=bank.slug)


def _own_path(path: object, bank: Bank) -> bool:
    """Whether `path` is one of this bank's customer pages (never another site)."""
    prefix = reverse("linking:dashboard", args=[bank.slug])
    return isinstance(path, str) and path.startswith(prefix) and "//" not in path


def authenticated_at(request: HttpRequest, bank: Bank) -> dt.datetime | None:
    """When the signed-in customer last proved who they are with the bank; None when they
    came in with a dashboard pass from the chat."""
    who = request.session.get(CUSTOMER_KEY) or {}
    if who.get("bank") != bank.slug or not who.get("authenticated_at"):
        return None
    try:
        return dt.datetime.fromisoformat(who["authenticated_at"])
    except (TypeError, ValueError):
        return None


def sign_in_again(request: HttpRequest, bank: Bank, path: str) -> HttpResponse:
    """Send the customer to the bank's sign-in, to come back to `path` afterwards: straight
    to its identity provider, asked to sign them in again (`prompt=login`), when it has
    one; else (or when it cannot be reached) to the sign-in page."""
    request.session[AFTER_SIGN_IN_KEY] = {"bank": bank.slug, "path": path}
    provider = _provider(bank)
    if provider is not None:
        try:
            started = oidc.start(provider, _oidc_redirect_uri(bank), reauthenticate=True)
        except oidc.OIDCError:
            log.warning("bank %s: identity provider unavailable for a new sign-in", bank.slug)
        else:
            request.session[OIDC_KEY] = {
                "bank": bank.slug,
                "state": started.state,
                "nonce": started.nonce,
                "verifier": started.code_verifier,
            }
            return HttpResponseRedirect(started.url)
    return HttpResponseRedirect(reverse("linking:login", args=[bank.slug]) + "?again=1")


def _oidc_redirect_uri(bank: Bank) -> str:
    return settings.PUBLIC_BASE_URL + reverse("linking:oidc-callback", args=[bank.slug])


@never_cache
@require_http_methods(["POST"])
def oidc_start(request, bank):
    """Send the customer to the bank's identity provider (authorisation code + PKCE)."""
    bank, _ = _bank(bank)
    provider = _provider(bank)
    if provider is None:
        return redirect("linking:login", bank=bank.slug)
    again = bool(request.session.get(AFTER_SIGN_IN_KEY))
    try:
        started = oidc.start(provider, _oidc_redirect_uri(bank), reauthenticate=again)
    except oidc.OIDCError as exc:
        return _problem(request, bank, gettext("Sign-in is not available right now"), str(exc), 503)
    request.session[OIDC_KEY] = {
        "bank": bank.slug,
        "state": started.state,
        "nonce": started.nonce,
        "verifier": started.code_verifier,
    }
    return HttpResponseRedirect(started.url)


@never_cache
@require_http_methods(["GET"])
def oidc_callback(request, bank):
    bank, _ = _bank(bank)
    pending = request.session.pop(OIDC_KEY, None)
    provider = _provider(bank)
    state = request.GET.get("state", "")
    if (
        provider is None
        or not pending
        or pending.get("bank") != bank.slug
        or not constant_time_compare(state, pending.get("state", ""))
    ):
        return _problem(
            request,
            bank,
            gettext("Sign-in could not be completed"),
            gettext("This sign-in was not started here, or was already used. Please start again."),
        )
    try:
        oidc.check_authorization_response(provider, request.GET.get("iss"))
    except oidc.OIDCError:
        return _problem(
            request,
            bank,
            gettext("Sign-in could not be completed"),
            gettext(
                "The answer did not come from %(bank)s's sign-in service. Nothing was shared. "
                "Please start again."
            )
            % {"bank": bank.name},
        )
    if request.GET.get("error") or not request.GET.get("code"):
        return _problem(
            request,
            bank,
            gettext("Sign-in was cancelled"),
            gettext("Nothing was shared. You can start again whenever you like."),
        )
    try:
        external_id = oidc.finish(
            provider,
            code=request.GET["code"],
            redirect_uri=_oidc_redirect_uri(bank),
            nonce=pending["nonce"],
            code_verifier=pending["verifier"],
        )
    except oidc.OIDCError as exc:
        return _problem(request, bank, gettext("Sign-in could not be completed"), str(exc))
    customer = Customer.objects.filter(bank=bank, external_id=external_id).first()
    if customer is None:
        return _problem(
            request,
            bank,
            gettext("Your account isn't set up for Messenger yet"),
            gettext("%(bank)s has not enabled Messenger updates for your account.")
            % {"bank": bank.name},
            status=403,
        )
    return _sign_in(request, bank, customer)


def _restart(request, bank: Bank):
    request.session.pop(FLOW_KEY, None)
    return _problem(
        request,
        bank,
        gettext("This Log In has expired"),
        gettext(
            "For your security, linking must be finished within 5 minutes. Go back to "
            "%(bank)s in Messenger and tap Log In again."
        )
        % {"bank": bank.name},
        status=410,
        restart=True,
    )


def _token_used(request: HttpRequest, bank: Bank) -> HttpResponse:
    log.warning("link flow for bank %s refused: account_linking_token already used", bank.slug)
    request.session.pop(FLOW_KEY, None)
    return _problem(
        request,
        bank,
        gettext("This Log In was already used"),
        gettext(
            "Each Log In from Messenger links once. Nothing more was shared. To link again, go "
            "back to %(bank)s in Messenger and tap Log In."
        )
        % {"bank": bank.name},
        status=410,
    )


def consent_screen_context(bank: Bank, customer: Customer) -> dict[str, Any]:
    """What the consent screen shows a signed-in customer, whichever flow brought them:
    their active accounts, the kinds of update, for how long, and nothing chosen beyond
    the bank's essential updates."""
    consent_settings = notification_settings_for(bank)
    duration = consent_settings.consent_duration_days
    essential = set(consent_settings.essential_scopes or [])
    return {
        "bank": bank,
        "customer": customer,
        "accounts": list(customer.accounts.filter(active=True)),
        "scopes": Consent.Scope.choices,
        "duration_days": duration,
        "expires_on": timezone.now() + timedelta(days=duration),
        "purpose": PURPOSE,
        "chosen_accounts": set(),
        "chosen_scopes": essential,
        "essential_scopes": essential,
    }


@never_cache
@require_http_methods(["GET", "POST"])
def consent(request, bank):
    bank, _ = _bank(bank)
    flow = _flow(request, bank)
    if flow is None:
        return _problem(
            request,
            bank,
            gettext("Start from Messenger"),
            gettext("Open %(bank)s in Messenger and tap Log In to link your account.")
            % {"bank": bank.name},
        )
    customer = current_customer(request, bank)
    if customer is None:
        return redirect("linking:login", bank=bank.slug)
    if _flow_expired(flow):
        return _restart(request, bank)
    context = {
        **consent_screen_context(bank, customer),
        "messenger_name": _messenger_name(request, bank, flow),
        **_flow_context(flow),
    }

    def deny() -> HttpResponse:
        try:
            services.consent_reject(
                customer=customer, page_id=flow["page_id"], account_linking_token=flow["token"]
            )
        except services.LinkingTokenUsedError:
            return _token_used(request, bank)
        request.session.pop(FLOW_KEY, None)
        return HttpResponseRedirect(flow["redirect_uri"])

    def allow(chosen: list[Account], scopes: list[str], text: str) -> HttpResponse:
        try:
            granted = services.consent_authorise(
                customer=customer,
                accounts=chosen,
                scopes=scopes,
                duration_days=context["duration_days"],
                purpose=str(PURPOSE),  # in the words the customer read
                page_id=flow["page_id"],
                account_linking_token=flow["token"],
                messenger_name=context["messenger_name"],
                text=text,
                language=get_language(),
            )
        except services.LinkingTokenUsedError:
            return _token_used(request, bank)
        request.session.pop(FLOW_KEY, None)
        code = {"authorization_code": granted.authorization_code}
        return HttpResponseRedirect(with_params(flow["redirect_uri"], code))

    return consent_screen(
        request, bank, context, form_action=flow["redirect_uri"], deny=deny, allow=allow
    )


def consent_screen(
    request: HttpRequest,
    bank: Bank,
    context: dict[str, Any],
    *,
    form_action: str,
    deny: Callable[[], HttpResponse],
    allow: Callable[[list[Account], list[str], str], HttpResponse],
) -> HttpResponse:
    """The consent screen of either flow (Log In's, an invitation's) and the customer's
    answer to it: `deny()` on *Deny*; on *Allow*, `allow(accounts, scopes, text)` with the
    accounts and scopes chosen among those offered and the words they agreed to. The
    screen comes back with the reason where `allow` raises ValidationError. Its form is
    answered with a redirect to `form_action`."""
    if request.method == "GET":
        return _consent_page(request, context, form_action)
    decision = request.POST.get("decision")
    if decision == "deny":
        return deny()
    if decision != "allow":
        return _problem(
            request, bank, gettext("Choose Allow or Deny"), gettext("Please choose Allow or Deny.")
        )
    chosen_ids = set(request.POST.getlist("accounts"))
    chosen = [a for a in context["accounts"] if str(a.pk) in chosen_ids]
    scopes = [s for s in request.POST.getlist("scopes") if s in Consent.Scope.values]
    try:
        return allow(chosen, scopes, consent_text(context, chosen, scopes))
    except ValidationError as exc:
        context.update(
            error=" ".join(exc.messages),
            chosen_accounts={a.pk for a in chosen},
            chosen_scopes=set(scopes),
        )
        return _consent_page(request, context, form_action, status=400)


def consent_text(context: dict[str, Any], accounts: list[Account], scopes: list[str]) -> str:
    """The words of the consent screen the customer answered, with what they chose, as
    they read them (their language): kept as the proof of consent."""
    labels = dict(Consent.Scope.choices)
    return render_to_string(
        "linking/consent_text.txt",
        {
            **context,
            "accounts": accounts,
            "scope_labels": [labels[s] for s in sorted(set(scopes)) if s in labels],
        },
    ).strip()


def _messenger_name(request: HttpRequest, bank: Bank, flow: dict[str, Any]) -> str:
    """The minimised name of the Messenger account this Log In came from ("Ana S."), or ""
    where the platform could not say. Asked once per flow (at most ~2 seconds) and kept
    with it, so a second look at the screen shows the same answer at once."""
    if "messenger_name" not in flow:
        found = messenger_identity.messenger_account_for(bank, flow["token"])
        flow["messenger_name"] = found.display_name if found is not None else ""
        request.session[FLOW_KEY] = flow
    return str(flow["messenger_name"])


def _consent_page(
    request: HttpRequest, context: dict[str, Any], form_action: str, status: int = 200
) -> HttpResponse:
    """The consent screen, whose answer is a redirect to `form_action` (back to Messenger's
    `redirect_uri`, or on to m.me)."""
    response = _page(request, "linking/consent.html", context, status=status)
    return allow_form_action(response, form_action)


@never_cache
@require_http_methods(["GET"])
def dashboard(request, bank):
    """The customer's access dashboard: every link, what it shares, and how to stop it."""
    bank, _ = _bank(bank)
    customer = current_customer(request, bank)
    if customer is None:
        return redirect("linking:login", bank=bank.slug)
    consents = customer.consents.prefetch_related("accounts", "events").exclude(
        status__in=[Consent.Status.AWAITING_AUTHORISATION, Consent.Status.REJECTED]
    )
    active = [c for c in consents if c.status == Consent.Status.AUTHORISED]
    ended = [c for c in consents if c.status != Consent.Status.AUTHORISED]
    last_shared = selectors.last_shared_at(customer)
    sent = selectors.last_update_sent([c.pk for c in active])
    last_update = {c.pk: sent.get(c.pk) for c in active}
    soon = timezone.now() + services.REMIND_BEFORE
    for consent in active:
        consent.last_shared = last_shared.get(str(consent.pk))
        consent.ends_soon = consent.expires_at is not None and consent.expires_at <= soon
    done = {
        "changed": gettext("Saved. From now on, only what you chose is shared."),
        "renewed": gettext("Renewed. Your updates continue."),
    }.get(request.GET.get("done", ""), "")
    return _page(
        request,
        "linking/dashboard.html",
        {
            "bank": bank,
            "customer": customer,
            "active": active,
            "ended": ended,
            "last_update": last_update,
            "scope_labels": dict(Consent.Scope.choices),
            "done": done,
            "timelines": {c.pk: receipts.timeline(c) for c in active},
        },
    )


@require_http_methods(["POST"])
def customer_logout(request, bank):
    request.session.pop(CUSTOMER_KEY, None)
    request.session.pop(FLOW_KEY, None)
    return redirect("linking:login", bank=bank)
