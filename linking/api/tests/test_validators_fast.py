"""The card number scan gives exactly what its rules give, on awkward input."""

import pytest

from linking.api.validators import (
    MAX_DEPTH,
    card_number_paths,
    field_name,
    is_identifier_path,
    looks_like_card_number,
    strings_in,
)


@pytest.mark.parametrize(
    ("text", "in_text", "in_identifier"),
    [
        ("4111111111111111", True, True),
        ("4111 1111 1111 1111", True, True),
        ("4111-1111-1111-1111", True, True),
        ("4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1", True, True),
        ("cu-4111111111111111", True, True),
        ("ref4111111111111111x", True, True),
        ("1 4111111111111111", True, True),
        ("4111 1111 1111 1111 4", True, True),
        ("4111 1111 1111 1111 4111 1111 1111 1111", True, True),
        ("378282246310005", True, True),  # Amex: 15 digits
        ("6011111111111117", True, True),
        ("5500-0000-0000-0004", True, True),
        ("4992739871600", True, True),  # 13 digits passing Luhn
        ("1234567812345670", True, True),
        ("0000000000000", True, True),
        ("٤١١١١١١١١١١١١١١١", True, True),  # Arabic-Indic digits are digits
        # 13 or more digits in a row that fail Luhn: an account number in text, an id in an id.
        ("4111111111112", True, False),
        ("1234567890123", True, False),
        ("1234567812345678", True, False),
        ("7992739871300000", True, False),
        ("4111111111111111111", True, False),
        ("41111111111111111111", True, False),
        ("12345678901234567890", True, False),
        ("9" * 40, True, False),
        # Not split the way card numbers are written, too short, or failing Luhn.
        ("4111.1111.1111.1111", False, False),
        ("4111\xa01111\xa01111\xa01111", False, False),
        ("4111  1111 1111 1111", False, False),
        ("4111 - 1111 - 1111 - 1111", False, False),
        ("4111 1111 1111 111", False, False),
        ("411111111111", False, False),
        ("000000000000", False, False),
        ("79927398713", False, False),
        ("1234 5678 9012 3456 7", False, False),
        ("Order 1234 5678 9012 3456 7", False, False),
        ("1-2-3-4-5-6-7-8-9-0-1-2-3", False, False),
        ("12 34 56 78 90 12 3", False, False),
        ("a1b2c3d4e5f6g7h8i9j0k1l2m3n4", False, False),
        ("+44 20 7946 0958", False, False),
        ("2026-03-01 ref 884211", False, False),
        ("", False, False),
    ],
)
def test_card_and_account_numbers_are_recognised(text, in_text, in_identifier):
    assert looks_like_card_number(text) is in_text
    assert looks_like_card_number(text, identifier=True) is in_identifier


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("amount", "amount"),
        ("card_last4", "card_last4"),
        ("_", "_"),
        ("a" * 64, "a" * 64),
        ("a" * 65, "*"),
        ("x4111111111111111", "*"),
        ("x1234567890123", "*"),
        ("x123456789012", "x123456789012"),
        ("a-b", "*"),
        ("é", "*"),
        ("", "*"),
        (7, "*"),
        (None, "*"),
    ],
)
def test_odd_field_names_are_never_echoed(key, expected):
    assert field_name(key) == expected
    assert field_name(key) == expected


PAN = "4111 1111 1111 1111"
ACCOUNT = "1234567890123"  # 13 digits failing Luhn: refused in text, allowed in an id


def test_numbers_are_found_at_their_paths_in_nested_data():
    value = {
        "id": ACCOUNT,
        "customer_id": PAN,
        "note": ACCOUNT,
        "data": {
            "items": [
                {"title": "ok", "sku": PAN},
                {"title": [ACCOUNT, ["fine", PAN]]},
            ],
            "order_number": [ACCOUNT, {"id": ACCOUNT, "x": ACCOUNT}],
            "card_last4": PAN,
            "n": 4111111111111111,
        },
        "x4111111111111111": PAN,
        "y4111111111111111": PAN,
        "é": {"z": PAN},
    }

    found = card_number_paths(value, skip=frozenset({"data.card_last4"}))

    assert found == [
        "customer_id",
        "note",
        "data.items[0].sku",
        "data.items[1].title[0]",
        "data.items[1].title[1][1]",
        "data.order_number[1].x",
        "*",
        "*.z",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (PAN, [""]),
        (ACCOUNT, [""]),
        ("fine", []),
        ([PAN, ACCOUNT, {"id": ACCOUNT}], ["[0]", "[1]"]),
        ({"id": [[ACCOUNT, PAN]]}, ["id[0][1]"]),
        (4111111111111111, []),
        (None, []),
        ((PAN,), []),
    ],
)
def test_numbers_are_found_in_any_json_value(value, expected):
    assert card_number_paths(value) == expected


def nested(depth: int, leaf: object) -> object:
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 5])
def test_the_scan_goes_as_deep_as_the_strings_it_reports(depth):
    value = nested(depth, PAN)
    expected = [path for path, text in strings_in(value) if looks_like_card_number(text)]

    assert card_number_paths(value) == expected
    assert bool(expected) is (depth <= MAX_DEPTH)


def test_the_scan_reports_what_strings_in_yields():
    value = [
        {"id": ACCOUNT, "tracking_url": [ACCOUNT], "alert_id": {"b": ACCOUNT}},
        {"4111-1111-1111-1111": [PAN, {"order_number": PAN}], "ok": "12 34"},
    ]
    expected = []
    for path, text in strings_in(value):
        if path not in expected and looks_like_card_number(
            text, identifier=is_identifier_path(path)
        ):
            expected.append(path)

    assert (
        card_number_paths(value)
        == expected
        == ["[0].alert_id.b", "[1].*[0]", "[1].*[1].order_number"]
    )
