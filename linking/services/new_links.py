"""A customer's "That wasn't me" about a new Messenger link, from one of their other chats.

When a link is bound, each of the customer's other linked chats is told (a
`LinkMessage` notice, `consents.link_bind`) with a "That wasn't me" button whose payload
names the notice. The payload is no secret: anyone can post any payload from their own
Messenger. So it is honoured only from the chat the notice went to, still linked to the
same customer; from anyone else it ends nothing, and the attempt is audited.
"""

from django.db import transaction

from linking import messages
from linking.models import Consent, LinkMessage
from linking.services.consents import PLATFORM, EndedBecause, consent_revoke, customer_actor
from linking.services.link_messages import link_message_about_schedule
from portal.models import Bank
from portal.pseudonyms import pseudonym
from portal.services import audit_record

Kind = LinkMessage.Kind
# A notice that may have reached the chat: only these can be answered.
ANSWERABLE = (LinkMessage.State.SENT, LinkMessage.State.UNCERTAIN)


def not_me_notice_id(payload: str) -> int | None:
    """The notice a "That wasn't me" payload names, or None for any other payload."""
    if not payload.startswith(messages.NOT_ME_PAYLOAD):
        return None
    number = payload[len(messages.NOT_ME_PAYLOAD) :]
    return int(number) if number.isascii() and number.isdigit() and len(number) < 19 else 0


@transaction.atomic
def link_report_not_me(*, bank: Bank, page_id: str, psid: str, notice_id: int) -> Consent | None:
    """The customer says the link a notice announced was not theirs: end it.

    Only the chat the notice was sent to, on this bank's Page and still linked to the
    same customer, can end it; anything else returns None after auditing the refusal.
    The new link is revoked by the customer (audited, its pending updates stopped,
    Messenger told through the unlink API, the bank told by `link.ended` with reason
    `not_made_by_customer`), and the chat gets an answer. A second tap finds the link
    ended and does nothing more. Returns the reported link.
    """
    notice = (
        LinkMessage.objects.select_related("consent__customer", "about")
        .filter(pk=notice_id, bank=bank, kind=Kind.NEW_LINK_NOTICE, state__in=ANSWERABLE)
        .first()
    )
    chat = notice.consent if notice is not None else None
    reported = notice.about if notice is not None else None
    if (
        notice is None
        or chat is None
        or reported is None
        or chat.page_id != page_id
        or chat.psid != psid
        or chat.status != Consent.Status.AUTHORISED
        or reported.customer_id != chat.customer_id
    ):
        audit_record(
            actor=PLATFORM,
            action="link.not_me_refused",
            bank=bank,
            target_type="messenger.psid",
            target_id=pseudonym(psid),
            details={"notice": notice_id, "page_id": page_id},
        )
        return None
    if reported.status != Consent.Status.AUTHORISED:
        return reported
    actor = customer_actor(chat.customer)
    reported = consent_revoke(
        consent=reported,
        actor=actor,
        reason="Reported by the customer from another Messenger chat: “That wasn't me”",
        ended_because=EndedBecause.NOT_MADE_BY_CUSTOMER,
    )
    audit_record(
        actor=actor,
        action="link.reported_not_me",
        bank=bank,
        target=reported,
        details={"notice": notice.pk, "reported_from": chat.pk},
    )
    answer = link_message_about_schedule(consent=chat, kind=Kind.NOT_ME_ANSWER, about=reported)
    from linking import tasks

    transaction.on_commit(lambda: tasks.send_link_message.delay(answer.pk))
    return reported
