"""The card number scan: what it finds, and how a found number is shown."""

import pytest

from core.cards import card_numbers_masked, holds_card_number


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("my card 4111 1111 1111 1111 was stolen", "my card •••• 1111 was stolen"),
        ("4111-1111-1111-1111", "•••• 1111"),
        ("4111111111111111.", "•••• 1111."),
        ("4992739871600", "•••• 1600"),  # 13 digits
        ("4111111111111111 and 5500 0000 0000 0004", "•••• 1111 and •••• 0004"),
        # Next to other digits, in one run of groups: still found, nothing of it left over.
        ("call 0800 123 4111 1111 1111 1111", "call 0800 123 •••• 1111"),
    ],
)
def test_card_numbers_show_their_last_four_digits_only(text, shown):
    assert holds_card_number(text)
    assert card_numbers_masked(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123",  # 13 digits failing the Luhn check
        "1234 5678 9012 3456 7",
        "41111111111111111111",  # 20 digits in one run: not a card number's length
        "on 2026-12-06 at 10:30, €1,204.50",
        "4111  1111  1111  1111",  # groups two spaces apart are separate numbers
        "",
    ],
)
def test_other_numbers_are_left_as_written(text):
    assert not holds_card_number(text)
    assert card_numbers_masked(text) == text


def test_overlapping_candidates_are_masked_as_one():
    # "0006 4111 1111 1111" passes the check as well as the card that ends after it.
    text = "ref 0006 4111 1111 1111 1111 end"

    assert card_numbers_masked(text) == "ref •••• 1111 end"
