"""Messenger's webhook for one bank: the subscription handshake and signed events."""

import datetime as dt
import logging
import re

from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

import messenger
from linking import services, signals
from portal.audit import Actor
from portal.models import Bank, MessengerIntegration
from portal.services import utility_template_status_record

log = logging.getLogger(__name__)

TEMPLATE_REVIEW = Actor.system("messenger template review")
# An event's type as a metric label and in logs: the platform's own names are short
# lowercase words; anything else is counted as "other".
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def messenger_webhook(request, bank):
    bank = get_object_or_404(Bank, slug=bank)
    integration = get_object_or_404(MessengerIntegration, bank=bank)
    if request.method == "GET":
        challenge = messenger.verify_handshake(request.GET, integration.verify_token)
        if challenge is None:
            return HttpResponseForbidden("verify token mismatch", content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    raw = request.body
    if not messenger.verify_request_signature(raw, request.headers, integration.app_secret):
        log.warning("webhook for bank %s refused: bad signature", bank.slug)
        return HttpResponseForbidden("bad signature", content_type="text/plain")
    try:
        events = messenger.parse_envelope(raw)
    except messenger.WebhookPayloadError as exc:
        return HttpResponse(f"malformed envelope: {exc}", status=400, content_type="text/plain")
    skipped = [_event_apply(bank, integration, event) for event in events].count(False)
    if skipped:
        log.warning(
            "webhook for bank %s: %d of %d events skipped",
            bank.slug,
            skipped,
            len(events),
            extra={"events_skipped": skipped, "events_received": len(events)},
        )
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


def _event_apply(bank, integration, event) -> bool:
    """Apply one event of a batch, all of it or none of it; whether it was applied.

    A signed batch is Meta's and is answered 200 whatever is in it: Meta retries anything
    else, then unsubscribes the app from the Page, and the batch would fail the same way
    each time. So an event that cannot be read, names another Page, or fails on the way in
    is logged and skipped, in its own transaction, and the others still go through.

    The database being out of reach (restarting, failing over) is not the batch's fault
    and passes: the answer is a 500 and Meta delivers the batch again, where skipping
    would lose its events for good (an echo among them would leave its send unsettled).
    The events applied before it are applied again then, which changes nothing: each is
    stored once (a message or echo by its `mid`, a window by its newest time).
    """
    if isinstance(event, messenger.UnknownEvent) and event.error:
        log.warning(
            "webhook for bank %s: a %s event skipped: %s", bank.slug, event.kind, event.error
        )
        _event_not_applied(bank, event, readable=False)
        return False
    # Only the bank's own Page speaks for it: an event naming any other Page (or a bank
    # with no Page yet) is ignored, and every look-up below is this bank's.
    if not integration.page_id or event.page_id != integration.page_id:
        log.warning("webhook for bank %s names another Page %s", bank.slug, event.page_id)
        return False
    try:
        with transaction.atomic():
            if messenger.opens_window(event) and event.sender_id:
                services.contact_touch(
                    bank=bank,
                    page_id=integration.page_id,
                    psid=event.sender_id,
                    at=dt.datetime.fromtimestamp(event.timestamp / 1000, tz=dt.UTC),
                )
            if isinstance(event, messenger.AccountLinkingEvent):
                _account_linking(bank, integration, event)
            elif (notice_id := _not_me_notice(event)) is not None:
                services.link_report_not_me(
                    bank=bank,
                    page_id=integration.page_id,
                    psid=event.sender_id or "",
                    notice_id=notice_id,
                )
            elif _manage_sharing(bank, integration, event):
                pass
            elif isinstance(event, messenger.TemplateStatusEvent):
                _template_status(bank, event)
            else:
                if isinstance(event, messenger.UnknownEvent):
                    _event_not_applied(bank, event, readable=True)
                _referral(bank, integration, event)
                signals.messenger_event.send(
                    sender=messenger_webhook,
                    bank_id=bank.pk,
                    page_id=integration.page_id,
                    event=event,
                )
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        log.exception("webhook for bank %s: a %s not applied", bank.slug, type(event).__name__)
        return False
    return True


def _not_me_notice(event: messenger.Event) -> int | None:
    """The new-link notice a "That wasn't me" tap names (a postback, or a quick reply);
    None for every other event, which goes on to the conversation."""
    if isinstance(event, messenger.PostbackEvent) and not event.standby:
        payload = event.payload or ""
    elif isinstance(event, messenger.MessageEvent) and not event.standby:
        payload = event.quick_reply_payload or ""
    else:
        return None
    return services.not_me_notice_id(payload)


def _manage_sharing(bank: Bank, integration: MessengerIntegration, event: messenger.Event) -> bool:
    """*Manage sharing* (the persistent menu, or the confirmation's button) from a linked
    chat: its answer, a button to a fresh dashboard pass, is owed. Whether it was; from a
    chat without a live link the postback goes on to the conversation."""
    if not isinstance(event, messenger.PostbackEvent) or event.standby or not event.sender_id:
        return False
    if (event.payload or "") != services.MANAGE_SHARING_PAYLOAD:
        return False
    owed = services.link_manage_requested(
        bank=bank, page_id=integration.page_id, psid=event.sender_id
    )
    return owed is not None


def _account_linking(bank, integration, event) -> None:
    if event.status == "linked":
        try:
            services.link_bind(
                bank=bank,
                page_id=integration.page_id,
                psid=event.sender_id,
                authorization_code=event.authorization_code or "",
            )
        except services.LinkRefusedError as refused:
            log.warning("link refused for bank %s: %s", bank.slug, refused)
    elif event.status == "unlinked":
        services.link_unlinked_by_platform(
            bank=bank, page_id=integration.page_id, psid=event.sender_id
        )


def _referral(bank: Bank, integration: MessengerIntegration, event: messenger.Event) -> None:
    """An m.me invitation's ref, brought into an existing thread (`messaging_referrals`) or
    a new one (*Get Started*): it links the person, or they are told why not."""
    if not isinstance(event, messenger.ReferralEvent | messenger.PostbackEvent):
        return
    ref = event.referral.ref if event.referral else None
    if ref is None or not services.is_invitation_ref(ref):
        return
    try:
        services.link_referral_bind(
            bank=bank, page_id=integration.page_id, psid=event.sender_id, ref=ref
        )
    except services.ReferralRefusedError as refused:
        log.warning("m.me link refused for bank %s: %s", bank.slug, refused)


def _template_status(bank: Bank, event: messenger.TemplateStatusEvent) -> None:
    """Meta's review of a utility template (either name of its webhook field)."""
    if not event.template_id:
        log.warning("webhook for bank %s: a template status without a template id", bank.slug)
        return
    utility_template_status_record(
        actor=TEMPLATE_REVIEW,
        bank=bank,
        platform_template_id=event.template_id,
        status=event.status or "",
        reason=event.reason or "",
    )


def event_type_label(kind: str) -> str:
    return kind if _EVENT_TYPE.match(kind or "") else "other"


def _event_not_applied(bank: Bank, event: messenger.UnknownEvent, *, readable: bool) -> None:
    """An event the product does not model (or cannot read) leaves a trace: a log line with
    its type and Page, never who sent it or what it says, and a count by type in /metrics."""
    kind = event_type_label(event.kind)
    if readable:
        log.warning(
            "webhook for bank %s: a %s event on Page %s is not modelled; counted, not applied",
            bank.slug,
            kind,
            event.page_id,
            extra={"event_type": kind, "page_id": event.page_id},
        )
    signals.messenger_event_not_applied.send(
        sender=messenger_webhook, bank_id=bank.pk, event_type=kind, readable=readable
    )
