"""Every staff URL, read from the URL map, answers with the strict Content-Security-Policy."""

import pytest
from django.test import Client

from core.tests.csp import assert_nothing_inline, assert_strict_policy
from portal.tests.factories import TOTPDeviceFactory, UserFactory
from portal.tests.test_access import world  # noqa: F401  (a fixture)
from portal.tests.urlmap import STAFF_URLS

pytestmark = pytest.mark.django_db


def test_every_staff_url_answers_with_the_policy(world, sign_in):  # noqa: F811
    root = UserFactory(is_superuser=True, is_staff=True)
    TOTPDeviceFactory(user=root)
    signed_in = sign_in(root)
    anonymous = Client()
    pages = 0

    for url in STAFF_URLS:
        client = anonymous if url.access.scope == "public" else signed_in
        address = url.reverse(bank=world["a"].bank.slug, token="not-a-token", **world["a"].objects)

        response = client.get(address)

        assert_strict_policy(response)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            assert_nothing_inline(response.content.decode())
            pages += 1

    assert pages >= 30
