"""The migrations that start the texts' histories: every live template and conversation text
becomes its version 1, approved by the system, and stays exactly what customers read."""

import pytest

from core.tests.migrations import migrate_to, schema_at

BEFORE = [
    ("portal", "0025_bank_country"),
    ("conversation", "0006_card_number_warned_for"),
]
AFTER = [
    ("portal", "0028_notification_policy_first_versions"),
    ("conversation", "0007_conversation_text_first_versions"),
]


@pytest.fixture
def before_histories(transactional_db):
    """The schema before the histories; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def test_live_texts_become_version_one_approved_by_the_system(before_histories):
    apps = before_histories
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    apps.get_model("portal", "MessageTemplate").objects.create(
        bank=bank, event_type="transaction.posted", locale="fr", body="{amount} chez {merchant}"
    )
    apps.get_model("portal", "NotificationPolicy").objects.create(
        bank=bank, event_type="transaction.posted", min_amount="250.00", urgent=True
    )
    apps.get_model("conversation", "ConversationText").objects.create(
        bank=bank, kind="automated", locale="de", body="Hier antwortet ein Assistent."
    )

    migrate_to(AFTER)

    from conversation.models import ConversationText
    from portal import services
    from portal.models import MessageTemplate, TextVersion

    versions = {(v.subject, v.key): v for v in TextVersion.objects.filter(bank__slug="harbour")}
    template = versions[("message_template", "transaction.posted:fr")]
    text = versions[("conversation_text", "automated:de")]
    for version in (template, text):
        assert version.number == 1 and version.state == TextVersion.State.APPROVED
        assert version.author_label == "system" and version.reviewer_label == "system"
        assert version.was_live and version.author is None
    assert template.body == MessageTemplate.objects.get(bank__slug="harbour").body
    assert text.body == ConversationText.objects.get(bank__slug="harbour").body
    policy = versions[("notification_policy", "transaction.posted")]
    assert policy.state == TextVersion.State.APPROVED and policy.number == 1
    assert policy.body == services.notification_policy_live_body(
        bank=policy.bank, key="transaction.posted"
    )  # as the service writes it, so a draft of the same rules is "nothing changed"
    assert "Only for amounts of at least 250.00" in services.notification_policy_describe(
        policy.body
    )
