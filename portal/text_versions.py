"""The staff pages of a text's maker-checker history, written once for every kind of text.

Each app that owns texts customers read describes them with a `VersionedText` (its
`VersionedSubject`, which holds the history and its approve/reject/rollback services, how
to name a text, and where its editor is) and wraps `version_review`, `version_decide` and
`version_rollback` in its own `bank_staff` views; the portal never imports the app. Pages
show a version's text as a word diff against the text customers read now (difflib),
escaped by the template.
"""

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from portal.audit import Actor
from portal.models import Bank, TextVersion
from portal.services.versions import VersionedSubject, staff_role, text_version_may_approve

_TOKENS = re.compile(r"\S+\s*|\s+")


def text_diff(before: str, after: str) -> list[tuple[str, str]]:
    """`after` against `before`, word by word: ("same" | "removed" | "added", text) pieces."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("removed", "".join(old[i1:i2])))
        if j2 > j1:
            pieces.append(("added", "".join(new[j1:j2])))
    return pieces


@dataclass(frozen=True)
class VersionedText:
    """One kind of text with a maker-checker history, as its app's pages show it.

    `url_name` names the review page; its actions are `<url_name>_approve`, `_reject` and
    `_rollback`, each with `bank` and the version's id as `url_param`.
    """

    versioned: VersionedSubject
    url_name: str
    title: Callable[[str], str]
    editor_url: Callable[[Bank, str], str]
    url_param: str = "version"
    # How a stored body reads to staff (a policy's values, one per line); texts as they are.
    display: Callable[[str], str] = str

    def url(self, bank: Bank, version: TextVersion, action: str = "") -> str:
        name = f"{self.url_name}_{action}" if action else self.url_name
        return reverse(name, kwargs={"bank": bank.slug, self.url_param: version.pk})


def version_get(bank: Bank, text: VersionedText, pk: int) -> TextVersion:
    version = (
        TextVersion.objects.for_bank(bank)
        .filter(subject=text.versioned.subject, pk=pk)
        .select_related("bank", "rollback_of")
        .first()
    )
    if version is None:
        raise Http404("No such version.")
    return version


@dataclass(frozen=True)
class VersionRow:
    """One version in a text's history, with what the signed-in staff member may do to it."""

    version: TextVersion
    text: str
    url: str
    may_approve: bool
    may_roll_back: bool


def version_rows(
    request: HttpRequest, bank: Bank, text: VersionedText, key: str
) -> list[VersionRow]:
    """A text's history, newest first."""
    actor = Actor.staff(request.user)
    role = staff_role(actor, bank)
    staff = getattr(request, "staff", None)
    can_operate = bool(staff and staff.can_operate)
    return [
        VersionRow(
            version=version,
            text=text.display(version.body),
            url=text.url(bank, version),
            may_approve=text_version_may_approve(actor=actor, version=version, role=role),
            may_roll_back=can_operate
            and version.was_live
            and version.state != TextVersion.State.APPROVED,
        )
        for version in TextVersion.objects.for_bank(bank)
        .filter(subject=text.versioned.subject, key=key)
        .select_related("rollback_of")
    ]


def version_review(
    request: HttpRequest, bank: Bank, text: VersionedText, version_pk: int
) -> HttpResponse:
    """One version: its text, what approving it would change, and its text's history."""
    version = version_get(bank, text, version_pk)
    live = text.versioned.live_body(bank=bank, key=version.key)
    is_live = version.state == TextVersion.State.APPROVED
    rows = version_rows(request, bank, text, version.key)
    this = next(row for row in rows if row.version.pk == version.pk)
    return render(
        request,
        "portal/versions/review.html",
        {
            "bank": bank,
            "title": text.title(version.key),
            "editor_url": text.editor_url(bank, version.key),
            "version": version,
            "live": live,
            "body": text.display(version.body),
            "diff": None
            if is_live
            else text_diff(
                text.display(live) if live is not None else "", text.display(version.body)
            ),
            "rows": rows,
            "this": this,
            "is_author": str(version.author_id) == str(request.user.pk),
            "approve_url": text.url(bank, version, "approve"),
            "reject_url": text.url(bank, version, "reject"),
            "rollback_url": text.url(bank, version, "rollback"),
            "text": text,
        },
    )


def version_decide(
    request: HttpRequest, bank: Bank, text: VersionedText, version_pk: int, *, approve: bool
) -> HttpResponse:
    """Approve or reject a draft (the services refuse the author, and non-admins)."""
    version = version_get(bank, text, version_pk)
    service = text.versioned.approve if approve else text.versioned.reject
    try:
        decided = service(actor=Actor.staff(request.user), version=version)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"Version {decided.number} is approved: customers read it from now on."
            if approve
            else f"Version {decided.number} is rejected: customers keep reading the live text.",
        )
    return redirect(text.url(bank, version))


def version_rollback(
    request: HttpRequest, bank: Bank, text: VersionedText, version_pk: int
) -> HttpResponse:
    """Draft a return to an earlier live version; an admin other than you approves it."""
    version = version_get(bank, text, version_pk)
    try:
        draft = text.versioned.rollback(actor=Actor.staff(request.user), version=version)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(text.url(bank, version))
    messages.success(
        request,
        f"Version {draft.number} drafts a return to version {version.number}: it goes live "
        "once an admin other than you approves it.",
    )
    return redirect(text.url(bank, draft))
