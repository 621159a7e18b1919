"""A loopback port that listens and tells whether anyone connected: proof a call was not made."""

import socket

import pytest


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
