"""The bank's callback URL cannot be turned against the network bankside runs in."""

import socket

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from notifications.conversation import callbacks
from notifications.models import BankCallback
from notifications.tests.test_conversation import write
from notifications.tests.test_fraud_callback import alert  # noqa: F401  (fixture)
from portal.models import StaffMembership
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

UNREACHABLE = "The bank's server could not be reached."


@pytest.fixture
def listener():
    """A TCP port on loopback that is listening, and that records whether anyone connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock: socket.socket) -> bool:
    try:
        peer, _ = sock.accept()
    except BlockingIOError:
        return False
    peer.close()
    return True


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def answered_with(linked, alert, url: str) -> BankCallback:  # noqa: F811
    """The customer answers the alert and the callback is sent once to `url`."""
    linked.integration.callback_url = url  # stored before the address rules existed
    linked.integration.save()
    write(linked, "No", payload=f"FRAUD_NO:{alert.pk}")
    callback = BankCallback.objects.get()
    callbacks.callback_deliver(callback_id=callback.pk)
    callback.refresh_from_db()
    return callback


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_stored_callback_url_on_loopback_is_never_connected_to(
    linked, alert, graph, listener, settings, host  # noqa: F811
):
    settings.NOTIFICATIONS_CALLBACK_TIMEOUT_SECONDS = 1
    port = listener.getsockname()[1]

    callback = answered_with(linked, alert, f"https://{host}:{port}/callbacks")

    (attempt,) = callback.tries.all()
    assert (attempt.status_code, attempt.error) == (None, UNREACHABLE)
    assert callback.state == "pending"
    assert not connected(listener)


@pytest.mark.parametrize("allow_private", [False, True])
def test_the_fraud_answers_page_tells_an_open_port_from_a_closed_one_by_nothing(
    linked, alert, graph, listener, settings, client, sign_in, allow_private  # noqa: F811
):
    settings.NOTIFICATIONS_CALLBACK_TIMEOUT_SECONDS = 0.5
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = allow_private
    open_port, shut_port = listener.getsockname()[1], closed_port()
    callback = answered_with(linked, alert, f"https://127.0.0.1:{open_port}/callbacks")
    BankCallback.objects.filter(pk=callback.pk).update(next_attempt_at=timezone.now())
    linked.integration.callback_url = f"https://127.0.0.1:{shut_port}/callbacks"
    linked.integration.save()
    callbacks.callback_deliver(callback_id=callback.pk)
    sign_in(StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user)

    page = client.get(reverse("conversation:fraud_answers", kwargs={"bank": linked.bank.slug}))

    text = page.content.decode()
    assert [t.error for t in callback.tries.order_by("number")] == [UNREACHABLE, UNREACHABLE]
    assert text.count(escape(UNREACHABLE)) == 2
    for detail in ("ConnectError", "Timeout", "refused", "Errno", "timed out", "SSL", "EOF"):
        assert detail not in text
