"""Helpers the staff pages share: secrets shown once, and secrets shown masked."""

from django.http import HttpRequest

from core.encryption import decrypt, encrypt

_REVEAL_KEY = "portal.reveal"
MASK = "••••••"


def reveal_once(request: HttpRequest, *, title: str, value: str, note: str = "") -> None:
    """Show `value` on the next page only (after the redirect), then never again.

    It waits in the session encrypted with the field keys, and is removed when shown.
    """
    request.session[_REVEAL_KEY] = {"title": title, "value": encrypt(value), "note": note}


def take_reveal(request: HttpRequest) -> dict | None:
    pending = request.session.pop(_REVEAL_KEY, None)
    if not pending:
        return None
    return {**pending, "value": decrypt(pending["value"])}


def masked(secret: str) -> str:
    """`••••••3f2a` for a long secret; only dots for a short one, where 4 would be too many."""
    if not secret:
        return ""
    return f"{MASK}{secret[-4:]}" if len(secret) >= 16 else MASK
