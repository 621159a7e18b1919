"""The words a customer agreed to, kept once per distinct text, and the versions of a
consent that point to them (proof of consent, GDPR art. 7(1))."""

from django.core.exceptions import ValidationError

from core.digests import sha256_hex
from linking.models import Account, Consent, ConsentText, ConsentVersion
from portal.models import Bank

TEXT_MAX = 20_000


def consent_text_record(*, bank: Bank, body: str, language: str) -> ConsentText:
    """The stored text for `body`, written the first time these exact words are seen."""
    if not body.strip():
        raise ValidationError("A consent text cannot be empty.")
    if len(body) > TEXT_MAX:
        raise ValidationError(f"A consent text has at most {TEXT_MAX} characters.")
    text, _created = ConsentText.objects.get_or_create(
        bank=bank,
        digest=sha256_hex(body),
        defaults={"body": body, "language": (language or "")[:10]},
    )
    return text


def consent_version_record(
    *, consent: Consent, accounts: list[Account], scopes: list[str], text: ConsentText | None
) -> ConsentVersion:
    """Append the consent's next version, in the caller's transaction (the consent locked)."""
    last = consent.versions.order_by("-number").values_list("number", flat=True).first()
    version = ConsentVersion.objects.create(
        consent=consent, number=(last or 0) + 1, scopes=list(scopes), text=text
    )
    version.accounts.set(accounts)
    return version


def consent_terms_record(*, consent: Consent, text: str, language: str) -> ConsentVersion:
    """Keep the words of a consent just given, and its version 1, in the caller's
    transaction: what the consent screen showed when the customer chose Allow."""
    stored = consent_text_record(bank=consent.bank, body=text, language=language) if text else None
    if stored is not None:
        consent.text = stored
        consent.save(update_fields=["text"])
    return consent_version_record(
        consent=consent, accounts=list(consent.accounts.all()), scopes=consent.scopes, text=stored
    )
