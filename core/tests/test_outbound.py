"""Outbound calls to addresses staff typed in go to public addresses only, on every hop."""

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from core import outbound
from core.tests.listener import connected

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch):
    """Names this test maps to addresses, as a DNS server under an attacker's control would."""
    names: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            address = names[host].pop(0) if len(names[host]) > 1 else names[host][0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::",
        "::1",
        "fe80::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_addresses_inside_networks_are_refused(address):
    assert not outbound.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert outbound.address_allowed(ipaddress.ip_address(address))


def test_a_public_looking_name_that_resolves_to_loopback_is_never_connected_to(
    settings, dns, listener
):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    dns["callbacks.bank.example"] = ["127.0.0.1"]
    url = f"https://callbacks.bank.example:{listener.getsockname()[1]}/"

    with pytest.raises(outbound.UnsafeURL):
        outbound.check_url(url)
    with outbound.client(timeout=2) as client, pytest.raises(httpx.ConnectError):
        client.post(url, content=b"{}")

    assert not connected(listener)


def test_a_name_that_resolves_elsewhere_once_saved_is_checked_again_on_connect(
    settings, dns, listener
):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    dns["callbacks.bank.example"] = ["93.184.216.34", "127.0.0.1"]  # DNS rebinding
    url = f"https://callbacks.bank.example:{listener.getsockname()[1]}/"

    assert outbound.check_url(url) == url
    with outbound.client(timeout=2) as client, pytest.raises(httpx.ConnectError):
        client.post(url, content=b"{}")

    assert not connected(listener)


@pytest.fixture
def answering_server():
    """An HTTP server on loopback answering a redirect to `target`, recording Host headers."""
    seen: dict = {"hosts": [], "target": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen["hosts"].append(self.headers["Host"])
            self.send_response(302)
            self.send_header("Location", seen["target"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["port"] = server.server_port
    yield seen
    server.shutdown()
    server.server_close()


def test_a_redirect_is_never_followed_and_the_host_name_is_kept(
    settings, dns, listener, answering_server
):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True  # the peer listens on loopback
    dns["callbacks.bank.example"] = ["127.0.0.1"]
    answering_server["target"] = f"http://127.0.0.1:{listener.getsockname()[1]}/latest/meta-data"

    with outbound.client(timeout=2) as client:
        response = client.get(f"http://callbacks.bank.example:{answering_server['port']}/")

    assert response.status_code == 302
    assert answering_server["hosts"] == [f"callbacks.bank.example:{answering_server['port']}"]
    assert not connected(listener)


def test_with_private_hosts_allowed_http_and_loopback_pass_the_url_check(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True

    assert outbound.check_url("http://127.0.0.1:8000/cb") == "http://127.0.0.1:8000/cb"
