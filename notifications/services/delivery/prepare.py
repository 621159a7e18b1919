"""Preparing: consents re-checked and each message's form chosen, in a few set-based reads."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

import messenger
from linking.models import Consent, Contact
from notifications.fraud_replies import fraud_alert_quick_replies
from notifications.models import Notification, Recipient
from notifications.services.delivery.jobs import Form, Job, Reason, State
from notifications.services.outbox import data_categories_for, first_name, message_data
from portal.events import EVENT_SCOPES
from portal.languages import formatting_locale
from portal.models import Bank, MessageTemplate, MessengerIntegration, UtilityTemplate
from portal.rendering import TemplateError, placeholders_in, render, utility_params
from portal.selectors import message_template_for, utility_template_for
from portal.services.integration import page_credentials

WINDOW = timedelta(hours=24)
WINDOW_MARGIN = timedelta(minutes=2)  # a message sent at 23:59:59 must not arrive at 24:00:01

ConsentFacts = tuple[str, str, str, datetime | None, frozenset[str]]


@dataclass(frozen=True)
class _Facts:
    """What a batch of jobs is checked against, each read once for the whole batch."""

    consents: dict[int, ConsentFacts]  # status, page, psid, expiry, scopes
    covered: set[tuple[int, int]]  # (consent, account) pairs still covered
    integrations: dict[int, MessengerIntegration]
    last_inbound: dict[tuple[int, str, str], datetime | None]
    unreachable: set[tuple[str, str]]


def _facts_read(jobs: list[Job]) -> _Facts:
    consents = {
        pk: (status, page_id, psid, expires_at, frozenset(scopes))
        for pk, status, page_id, psid, expires_at, scopes in Consent.objects.filter(
            pk__any={j.consent_id for j in jobs}
        ).values_list("pk", "status", "page_id", "psid", "expires_at", "scopes")
    }
    covered = set(
        Consent.accounts.through.objects.filter(
            consent_id__any={j.consent_id for j in jobs},
            account_id__any={j.account_id for j in jobs},
            account__active=True,
        ).values_list("consent_id", "account_id")
    )
    integrations = {
        i.bank_id: i
        for i in MessengerIntegration.objects.filter(bank_id__any={j.bank_id for j in jobs})
    }
    people = {(j.page_id, j.psid) for j in jobs}
    last_inbound: dict[tuple[int, str, str], datetime | None] = {
        (bank_id, page_id, psid): at
        for bank_id, page_id, psid, at in Contact.objects.filter(
            bank_id__any={j.bank_id for j in jobs},
            psid__any={psid for _, psid in people},
            page_id__any={p for p, _ in people},
        ).values_list("bank_id", "page_id", "psid", "last_inbound_at")
    }
    unreachable = set(
        Recipient.objects.filter(
            psid__any={psid for _, psid in people}, unreachable_at__isnull=False
        ).values_list("page_id", "psid")
    )
    return _Facts(consents, covered, integrations, last_inbound, unreachable)


def _link_ended(job: Job, consent: ConsentFacts | None, facts: _Facts, now: datetime) -> bool:
    scope = EVENT_SCOPES.get(job.event_type)
    return (
        consent is None
        or consent[0] != Consent.Status.AUTHORISED
        or (consent[1], consent[2]) != (job.page_id, job.psid)
        or (consent[3] is not None and consent[3] <= now)
        or scope not in consent[4]
        or (job.consent_id, job.account_id) not in facts.covered
    )


def _values(job: Job, scopes: frozenset[str]) -> dict[str, Any]:
    """The values a template of the job's event may show, within what the link shares."""
    return message_data(
        job.event_type,
        job.event_data,
        first_name=first_name(job.customer_name),
        last4=job.last4,
        currency=job.currency,
        account_name=job.account_name,
        scopes=scopes,
    )


def retry_budget() -> tuple[int, timedelta]:
    """A notification's retry budget: its most attempts, and how long after it was queued."""
    return (
        settings.NOTIFICATIONS_MAX_ATTEMPTS,
        timedelta(hours=settings.NOTIFICATIONS_MAX_AGE_HOURS),
    )


class Preparing:
    """The pipeline's checks before a send: still allowed, to whom, in which form."""

    banks: dict[int, Bank]

    if TYPE_CHECKING:  # the pipeline's other parts

        def finish(self, job: Job, state: str, reason: str, *, detail: str = "") -> None: ...
        def release(self, job: Job, reason: str, at: datetime) -> None: ...

    def prepare(self, jobs: list[Job]) -> list[Job]:
        """Re-check consents and choose each message's form; returns the jobs to send."""
        now = timezone.now()
        facts = _facts_read(jobs)
        self.banks.update(Bank.objects.in_bulk({j.bank_id for j in jobs} - set(self.banks)))
        utility_cache: dict[tuple[int, str, str], UtilityTemplate | None] = {}
        credentials: dict[int, messenger.PageCredentials | None] = {}
        budget = retry_budget()
        return [
            job
            for job in jobs
            if self.prepare_one(job, facts, now, utility_cache, credentials, budget)
        ]

    def prepare_one(
        self,
        job: Job,
        facts: _Facts,
        now: datetime,
        utility_cache: dict[tuple[int, str, str], UtilityTemplate | None],
        credentials: dict[int, messenger.PageCredentials | None],
        budget: tuple[int, timedelta] | None = None,
    ) -> bool:
        """Whether `job` goes out; if not, its result says why."""
        consent = facts.consents.get(job.consent_id)
        integration = facts.integrations.get(job.bank_id)
        if _link_ended(job, consent, facts, now):
            self.finish(job, State.CANCELLED, Reason.LINK_ENDED)
        elif integration is None or integration.status != MessengerIntegration.Status.LIVE:
            self.release(job, Reason.INTEGRATION_PAUSED, now)
        elif integration.page_id != job.page_id:
            self.finish(job, State.DEAD, Reason.PAGE_CHANGED)
        elif (job.page_id, job.psid) in facts.unreachable:
            self.finish(job, State.FAILED, Reason.PERSON_UNAVAILABLE)
        elif self.out_of_budget(job, now, budget=budget):
            self.finish(job, State.DEAD, Reason.BUDGET_EXHAUSTED)
        else:
            if job.bank_id not in credentials:
                try:
                    credentials[job.bank_id] = page_credentials(integration)
                except ValueError:
                    credentials[job.bank_id] = None
            job.creds = credentials[job.bank_id]
            job.send_rate_limit = integration.send_rate_limit
            if job.creds is None:
                self.release(job, Reason.INTEGRATION_PAUSED, now + timedelta(minutes=1))
                return False
            inbound = facts.last_inbound.get((job.bank_id, job.page_id, job.psid))
            in_window = inbound is not None and now - inbound < WINDOW - WINDOW_MARGIN
            # `_link_ended` is true for a job without a consent.
            return self.choose_form(job, in_window, consent[4], utility_cache)  # type: ignore[index]
        return False

    def choose_form(
        self,
        job: Job,
        in_window: bool,
        scopes: frozenset[str],
        cache: dict[tuple[int, str, str], UtilityTemplate | None],
    ) -> bool:
        """Free-form inside the window, the utility template outside it, else hold.

        The event's values are read only where a text is made here: most notifications
        were rendered when they were queued and go out inside the window as they are."""
        try:
            if in_window and not job.window_closed:
                if not job.text and not self.render_now(job, _values(job, scopes), scopes):
                    return False
                job.form = Form.UPDATE
                job.payload = messenger.builders.text_message(
                    job.psid,
                    job.text,
                    messaging_type="UPDATE",
                    quick_replies=fraud_alert_quick_replies(job.event_type, job.id, job.locale),
                    metadata=messenger.reference("n", job.id),
                )
                return True
            key = (job.bank_id, job.event_type, job.locale)
            if key not in cache:
                cache[key] = self.utility_template(job)
            utility = cache[key]
            if utility is None:
                self.finish(
                    job,
                    State.HELD,
                    Reason.NO_ALLOWED_FORM,
                    detail=(
                        "Outside the 24-hour window, and no approved utility template for "
                        f"{job.event_type} ({job.locale}). It is sent when the customer next "
                        "writes, or when staff replay it after a template is approved."
                    ),
                )
                return False
            job.form = Form.UTILITY
            job.payload = messenger.builders.utility_template_message(
                job.psid,
                utility.name,
                utility.language,
                utility_params(
                    utility.param_names,
                    job.event_type,
                    _values(job, scopes),
                    locale=formatting_locale(job.locale, utility.locale),
                ),
                metadata=messenger.reference("n", job.id),
            )
            job.data_categories = data_categories_for(job.event_type, utility.param_names, scopes)
            return True
        except (ValueError, TemplateError) as exc:
            self.finish(job, State.DEAD, Reason.RENDER_FAILED, detail=str(exc))
            return False

    def render_now(self, job: Job, values: dict[str, Any], scopes: frozenset[str]) -> bool:
        """Render a notification queued without text (its template was missing then)."""
        template = message_template_for(
            bank=self.banks[job.bank_id], event_type=job.event_type, locale=job.locale
        )
        if template is None:
            self.finish(
                job,
                State.HELD,
                Reason.NO_TEMPLATE,
                detail=f"The bank has no {job.event_type} message template.",
            )
            return False
        job.text = render(
            template.body,
            job.event_type,
            values,
            locale=formatting_locale(job.locale, template.locale),
        )
        job.data_categories = data_categories_for(
            job.event_type, placeholders_in(template.body), scopes
        )
        Notification.objects.filter(pk=job.id).update(
            text=job.text, data_categories=job.data_categories
        )
        return True

    def utility_template(self, job: Job) -> UtilityTemplate | None:
        template: MessageTemplate | None = message_template_for(
            bank=self.banks[job.bank_id], event_type=job.event_type, locale=job.locale
        )
        return utility_template_for(template=template) if template is not None else None

    @staticmethod
    def out_of_budget(
        job: Job,
        now: datetime,
        *,
        next_attempt: datetime | None = None,
        budget: tuple[int, timedelta] | None = None,
    ) -> bool:
        """Whether `job` has used its retry budget; `budget`: `retry_budget()`, read once
        for a batch (each read of a setting costs a lazy object's look-up)."""
        attempts, age = budget or retry_budget()
        return job.attempts >= attempts or (next_attempt or now) > job.queued_at + age
