import pytest

from portal.templatetags.portal_tags import audit_value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (["created", "page_id"], "created, page_id"),
        (True, "yes"),
        (None, "—"),
        (
            {"name": "Harbour", "require_2fa_for_all": False},
            "name: Harbour; require_2fa_for_all: no",
        ),
        (42, "42"),
    ],
)
def test_audit_details_read_as_plain_text(value, shown):
    assert audit_value(value) == shown
