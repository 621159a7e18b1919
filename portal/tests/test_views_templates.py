import pytest
from django.urls import reverse

from portal import services
from portal.events import EventType
from portal.models import AuditEvent, MessageTemplate, StaffMembership, TextVersion
from portal.rendering import TEXT_LIMIT
from portal.tests.factories import SEED, StaffMembershipFactory, template_text_approved

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
TXN = EventType.TRANSACTION_POSTED


@pytest.fixture
def bank():
    return services.bank_create(actor=SEED, name="Harbour Bank", slug="harbour")


@pytest.fixture
def member_client(bank, sign_in):
    def _client(role):
        return sign_in(StaffMembershipFactory(bank=bank, role=role).user)

    return _client


def template_of(bank, event_type=TXN, locale="en"):
    return MessageTemplate.objects.get(bank=bank, event_type=event_type, locale=locale)


def edit_url(template):
    return reverse(
        "portal:message_template_edit",
        kwargs={"bank": template.bank.slug, "template": template.pk},
    )


def version_url(version, action=""):
    name = f"portal:message_template_version{'_' + action if action else ''}"
    return reverse(name, kwargs={"bank": version.bank.slug, "version": version.pk})


PREVIEW = reverse("portal:message_template_preview", kwargs={"bank": "harbour"})


def test_the_editor_shows_the_preview_rendered_from_sample_data(bank, member_client):
    page = member_client(Role.OPERATOR).get(edit_url(template_of(bank))).content.decode()

    assert (
        'id="template-preview" aria-live="polite">'
        "You paid €42.50 at Café Lumière with your card •••• 4821."
    ) in page  # the default text, written by the kind of the sample transaction
    assert 'data-insert="{merchant}"' in page


def test_the_preview_endpoint_renders_what_is_typed_with_masking(bank, member_client):
    response = member_client(Role.OPERATOR).post(
        PREVIEW,
        {"event_type": TXN, "locale": "fr", "body": "{amount} : {description}"},
    )

    assert response.status_code == 200
    text = "-42,50\xa0€ : Contactless payment, card •••• 4821"
    assert response.json() == {"text": text, "errors": [], "length": len(text), "limit": TEXT_LIMIT}


def test_the_preview_endpoint_explains_an_unknown_placeholder(bank, member_client):
    response = member_client(Role.ADMIN).post(
        PREVIEW, {"event_type": "balance.updated", "locale": "en", "body": "{amount}"}
    )

    body = response.json()
    assert body["text"] == ""
    assert body["errors"][0].startswith("Unknown placeholder {amount}.")


def test_the_preview_endpoint_refuses_an_unknown_event_type(bank, member_client):
    response = member_client(Role.ADMIN).post(PREVIEW, {"event_type": "x", "body": "hi"})

    assert response.status_code == 400


def test_saving_a_template_with_an_unknown_placeholder_shows_a_form_error(bank, member_client):
    template = template_of(bank)

    response = member_client(Role.OPERATOR).post(edit_url(template), {"body": "Hi {nickname}"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Unknown placeholder {nickname}. For card and account transactions you can use" in page
    assert template_of(bank).body == template.body


def test_an_operator_saves_a_draft_that_stays_off_the_live_template(bank, member_client):
    live = template_of(bank).body

    response = member_client(Role.OPERATOR).post(
        edit_url(template_of(bank)), {"body": "Paid {amount} at {merchant}."}, follow=True
    )

    page = response.content.decode()
    assert "Draft saved as version 2." in page and "Approve and make live" not in page
    assert "You wrote this draft: another admin approves it." in page
    assert template_of(bank).body == live
    assert AuditEvent.objects.filter(action="text_version.drafted").count() == 1


def test_an_admin_approves_an_operators_draft_and_it_goes_live(bank, member_client):
    member_client(Role.OPERATOR).post(
        edit_url(template_of(bank)), {"body": "Paid {amount} at {merchant}."}
    )
    draft = TextVersion.objects.get(bank=bank, state=TextVersion.State.DRAFT)
    admin = member_client(Role.ADMIN)
    review = admin.get(version_url(draft)).content.decode()
    assert "<del>" in review and "<ins>" in review and "Approve and make live" in review

    response = admin.post(version_url(draft, "approve"), follow=True)

    assert "Version 2 is approved: customers read it from now on." in response.content.decode()
    assert template_of(bank).body == "Paid {amount} at {merchant}."
    assert AuditEvent.objects.filter(action="text_version.approved").count() == 1


def test_adding_a_language_starts_from_that_languages_default_text(bank, member_client):
    client = member_client(Role.OPERATOR)
    new = reverse("portal:message_template_new", kwargs={"bank": "harbour"})

    page = client.get(new, {"event_type": TXN, "locale": "de"}).content.decode()
    assert "Hallo {customer_first_name}" in page

    response = client.post(
        new, {"event_type": TXN, "locale": "de", "body": "{amount} bei {merchant}"}, follow=True
    )
    draft = TextVersion.objects.get(bank=bank, key=f"{TXN}:de")
    assert response.redirect_chain[-1][0] == version_url(draft)
    assert "Nothing in this language is live yet" in response.content.decode()
    assert not MessageTemplate.objects.filter(bank=bank, locale="de").exists()


def test_a_language_is_deleted_but_not_the_default_one(bank, member_client):
    client = member_client(Role.OPERATOR)
    extra = template_text_approved(bank, event_type=TXN, locale="fr", body="{amount}")

    client.post(
        reverse("portal:message_template_delete", kwargs={"bank": "harbour", "template": extra.pk})
    )
    page = client.post(
        reverse(
            "portal:message_template_delete",
            kwargs={"bank": "harbour", "template": template_of(bank).pk},
        ),
        follow=True,
    ).content.decode()

    assert not MessageTemplate.objects.filter(pk=extra.pk).exists()
    assert "every event type needs a template in it" in page
    assert template_of(bank)


def test_an_auditor_sees_the_text_and_preview_but_no_editor(bank, member_client):
    page = member_client(Role.AUDITOR).get(edit_url(template_of(bank))).content.decode()

    assert 'id="template-body"' in page and 'id="template-preview"' in page
    assert "<textarea" not in page and "Register with Meta" not in page
    assert "Delete template" not in page


def test_the_template_list_shows_every_event_type_with_its_default_language(bank, member_client):
    page = (
        member_client(Role.AUDITOR)
        .get(reverse("portal:message_templates", kwargs={"bank": "harbour"}))
        .content.decode()
    )

    for label in EventType.labels:
        assert label in page
    assert "English (en)" in page and "not registered" in page
    assert "Add a language" not in page


@pytest.mark.parametrize("written", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4992739871600"])
def test_a_template_holding_a_card_number_is_refused_with_a_form_error(
    bank, member_client, written
):
    template = template_of(bank)
    client = member_client(Role.OPERATOR)

    edited = client.post(edit_url(template), {"body": f"Your card {written} was used."})
    added = client.post(
        reverse("portal:message_template_new", kwargs={"bank": "harbour"}),
        {"event_type": TXN, "locale": "fr", "body": f"Carte {written} : {{amount}}"},
    )

    for response in (edited, added):
        assert response.status_code == 200
        assert "holds a full card number" in response.content.decode()
    assert template_of(bank).body == template.body
    assert not MessageTemplate.objects.filter(bank=bank, locale="fr").exists()
    assert not TextVersion.objects.filter(bank=bank, state=TextVersion.State.DRAFT).exists()


def test_the_template_list_names_the_languages_without_a_template(bank, member_client):
    template_text_approved(bank, event_type=TXN, locale="fr", body="{amount} : {description}")
    url = reverse("portal:message_templates", kwargs={"bank": "harbour"})

    page = member_client(Role.OPERATOR).get(url).content.decode()

    sections = page.split('<section class="card table-card"')[1:]
    (transactions,) = [s for s in sections if TXN in s]
    missing = transactions.split('class="small missing-languages"')[1].split("</p>")[0]
    assert "<strong>German (de)</strong>" in missing
    assert "<strong>Spanish (es)</strong>" in missing
    assert "<strong>French (fr)</strong>" not in missing
    assert "<strong>English (en)</strong>" not in missing
    assert "get the English (en) text, with its number and date formats" in missing
    assert f"?event_type={TXN}&amp;locale=de" in missing  # one click to add it
    (balances,) = [s for s in sections if "balance.updated" in s]
    assert "<strong>French (fr)</strong>" in balances


def test_the_default_transaction_text_shows_how_each_kind_of_transaction_reads(bank, member_client):
    page = member_client(Role.AUDITOR).get(edit_url(template_of(bank))).content.decode()

    assert "While this default text is kept" in page
    assert (
        "<dt>A card payment</dt><dd>You paid €4.61 at Corner Coffee with your card •••• 4037.</dd>"
        in page
    )
    assert (
        "<dt>Money arriving</dt><dd>€250.00 arrived in your account •••• 4821: Salary.</dd>" in page
    )


def test_a_banks_own_transaction_text_shows_no_kinds(bank, member_client):
    template_text_approved(bank, event_type=TXN, locale="en", body="{amount}")

    page = member_client(Role.AUDITOR).get(edit_url(template_of(bank))).content.decode()

    assert "While this default text is kept" not in page
