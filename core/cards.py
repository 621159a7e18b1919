"""Card numbers (PANs) in free text: found one way everywhere, shown as the last 4 at most.

A card number is 13 to 19 digits passing the Luhn check, written in one run or in groups
split by single spaces or dashes ("4111 1111 1111 1111", "4111-1111-1111-1111"). It may
sit inside a longer run of groups ("call 0800 123 4111 1111 1111 1111"): every stretch of
whole groups is tried, so one written next to other digits is still found.

The core-banking API refuses such text (`linking.api.validators`), the log redactor masks
it (`core.logging`), what customers write in the chat is stored masked, and what the
bank writes for customers to read is refused.
"""

import re

MASK = "••••"
PAN_LENGTHS = range(13, 20)

_DIGIT_RUN = re.compile(r"\d+(?:[ \-]\d+)*")
_GROUP = re.compile(r"\d+")
# 13 digits, each pair at most one space or dash apart: every card number holds such a
# stretch, so text without one is let through without looking further.
THIRTEEN_DIGITS = re.compile(r"\d(?:[ \-]?\d){12}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_number_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` holds card numbers: (start, end) of each, in order.

    Every stretch of whole groups that makes a card number counts, and stretches that
    overlap make one span: a card number is never left partly visible because a longer
    stretch around it happened to pass the check too.
    """
    if THIRTEEN_DIGITS.search(text) is None:
        return []
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, run.start(), run.end())]
        for first in range(len(groups)):
            digits = ""
            for start, end in groups[first:]:
                digits += text[start:end]
                if len(digits) > PAN_LENGTHS.stop - 1:
                    break
                if len(digits) in PAN_LENGTHS and luhn_valid(digits):
                    span = (groups[first][0], end)
                    if spans and span[0] < spans[-1][1]:
                        span = (spans.pop()[0], max(end, span[1]))
                    spans.append(span)
    return spans


def holds_card_number(text: str) -> bool:
    return bool(card_number_spans(text))


def card_numbers_masked(text: str, *, replacement: str | None = None) -> str:
    """`text` with every card number shown as `•••• 1111`, its last 4 digits (or as
    `replacement`, where not even those may appear)."""
    spans = card_number_spans(text)
    if not spans:
        return text
    parts, done = [], 0
    for start, end in spans:
        digits = "".join(_GROUP.findall(text[start:end]))
        parts += [text[done:start], replacement or f"{MASK} {digits[-4:]}"]
        done = end
    parts.append(text[done:])
    return "".join(parts)
