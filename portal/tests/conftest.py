import pytest
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user

from portal.selectors import two_factor_required
from portal.tests.factories import TOTPDeviceFactory


@pytest.fixture
def sign_in(client):
    """Sign `user` in as the login flow would: with their second factor when they need one."""

    def _sign_in(user, *, http_client=None):
        http_client = http_client or client
        http_client.force_login(user)
        if two_factor_required(user):
            device = next(iter(devices_for_user(user)), None) or TOTPDeviceFactory(user=user)
            session = http_client.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()
        return http_client

    return _sign_in
