"""The customer's pages of an m.me invitation: the single-use URL the bank's app opens, and
the consent screen it leads to, whose *Allow* goes on to the bank's Page in Messenger."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import get_language, gettext, gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from linking import services
from linking.models import Account, LinkInvitation
from linking.views import (
    PURPOSE,
    _bank,
    _problem,
    consent_screen,
    consent_screen_context,
    linking_paused,
    time_limit_context,
)
from portal.models import Bank

INVITATION_KEY = "link_invitation"
REFUSED = {
    "unknown": (
        gettext_noop("This link can't be used"),
        gettext_noop(
            "It is not a link from %(bank)s to Messenger. Open %(bank)s's app or online "
            "banking and choose Messenger updates again."
        ),
    ),
    "used": (
        gettext_noop("This link was already used"),
        gettext_noop(
            "For your security, each link opens once. Nothing more was shared. To link "
            "again, choose Messenger updates in %(bank)s's app or online banking."
        ),
    ),
    "expired": (
        gettext_noop("This link has expired"),
        gettext_noop(
            "For your security, a link from %(bank)s works for 15 minutes. Choose Messenger "
            "updates in %(bank)s's app or online banking again."
        ),
    ),
}


def _refused(request: HttpRequest, bank: Bank, reason: str) -> HttpResponse:
    request.session.pop(INVITATION_KEY, None)
    title, detail = REFUSED[reason]
    return _problem(
        request, bank, gettext(title), gettext(detail) % {"bank": bank.name}, status=410
    )


@never_cache
@require_http_methods(["GET"])
def invitation_open(request: HttpRequest, bank: str, token: str) -> HttpResponse:
    """The URL the bank's app opens: spent at once, then the consent screen, so the token
    stays out of the browser's history of pages and out of any Referer."""
    found, _ = _bank(bank)
    if len(token) > 100:
        return _refused(request, found, "unknown")
    try:
        invitation = services.link_invitation_open(bank=found, token=token)
    except services.InvitationRefusedError as refused:
        return _refused(request, found, refused.reason)
    request.session.cycle_key()
    request.session[INVITATION_KEY] = {"bank": found.slug, "id": invitation.pk}
    return redirect("linking:invitation-consent", bank=found.slug)


def _invitation(request: HttpRequest, bank: Bank) -> LinkInvitation | None:
    held = request.session.get(INVITATION_KEY) or {}
    invitation_id = held.get("id")
    if held.get("bank") != bank.slug or not isinstance(invitation_id, int):
        return None
    return (
        LinkInvitation.objects.select_related("customer")
        .filter(pk=invitation_id, bank=bank)
        .first()
    )


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_consent(request: HttpRequest, bank: str) -> HttpResponse:
    """The consent screen of an opened invitation: the same choices as Log In's."""
    found, _ = _bank(bank)
    invitation = _invitation(request, found)
    if invitation is None:
        return _problem(
            request,
            found,
            gettext("Start from your bank"),
            gettext("Open %(bank)s's app or online banking and choose Messenger updates.")
            % {"bank": found.name},
        )
    if invitation.answered_at is not None:
        return _refused(request, found, "used")
    if invitation.expires_at <= timezone.now():
        return _refused(request, found, "expired")
    context = {
        **consent_screen_context(found, invitation.customer),
        **time_limit_context(invitation.expires_at),
        "invitation": True,
    }

    def deny() -> HttpResponse:
        try:
            services.link_invitation_reject(bank=found, invitation_id=invitation.pk)
        except services.InvitationRefusedError as refused:
            return _refused(request, found, refused.reason)
        request.session.pop(INVITATION_KEY, None)
        return _problem(
            request,
            found,
            gettext("Nothing was shared"),
            gettext("You chose not to link %(bank)s to Messenger. You can close this page.")
            % {"bank": found.name},
            status=200,
        )

    def allow(chosen: list[Account], scopes: list[str], text: str) -> HttpResponse:
        try:
            authorised = services.link_invitation_authorise(
                bank=found,
                invitation_id=invitation.pk,
                accounts=chosen,
                scopes=scopes,
                duration_days=context["duration_days"],
                purpose=str(PURPOSE),  # in the words the customer read
                text=text,
                language=get_language(),
            )
        except services.InvitationRefusedError as refused:
            return _refused(request, found, refused.reason)
        except services.InvitationUnavailableError:
            return linking_paused(request, found)
        request.session.pop(INVITATION_KEY, None)
        return HttpResponseRedirect(authorised.m_me_url)

    # *Allow* goes on to the bank's Page in Messenger (m.me).
    return consent_screen(
        request, found, context, form_action=settings.MESSENGER_ME_URL, deny=deny, allow=allow
    )
