"""The reference every Send API call carries in `message.metadata`, and reading it back.

Meta returns `metadata` in the message's echo (messenger-platform §2 and §3), so the reference
tells, after a crash, which message an echo is the copy of. The format is compact and
fixed: `bankside:<kind>:<id>`, where kind is `n` (a notification), `r` (a conversation
reply, the assistant's or an agent's), `l` (a link message) or `u` (the goodbye sent when
the bank unlinks, by consent), and id is the row's decimal primary key, e.g.
`bankside:n:1234`: at most 30 characters, far under Meta's 1000. Anything else in
an echo's metadata (another app's, a person's in Meta's Page
inbox, none at all) reads as no reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["PREFIX", "Reference", "reference", "reference_parse"]

PREFIX = "bankside"
Kind = Literal["n", "r", "l", "u"]
KINDS: frozenset[str] = frozenset({"n", "r", "l", "u"})
MAX_ID = 2**63 - 1  # a bigint primary key
_REFERENCE = re.compile(r"bankside:([nrlu]):([1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Reference:
    kind: Kind
    id: int

    def __str__(self) -> str:
        return f"{PREFIX}:{self.kind}:{self.id}"


def reference(kind: Kind, pk: int) -> str:
    """The metadata string for row `pk` of `kind`."""
    if kind not in KINDS:
        raise ValueError(f"reference kind must be one of n, r, l, u, got {kind!r}")
    if isinstance(pk, bool) or not isinstance(pk, int) or not 0 < pk <= MAX_ID:
        raise ValueError(f"reference id must be a positive integer, got {pk!r}")
    return str(Reference(kind, pk))


def reference_parse(metadata: str | None) -> Reference | None:
    """The reference an echo's metadata carries, or None when it carries none of ours."""
    if not isinstance(metadata, str):
        return None
    found = _REFERENCE.fullmatch(metadata)
    if found is None:
        return None
    pk = int(found.group(2))
    if pk > MAX_ID:
        return None
    kind: Kind = found.group(1)  # type: ignore[assignment]
    return Reference(kind, pk)
