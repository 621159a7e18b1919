"""The one SHA-256 hex digest: a text is hashed as its UTF-8 bytes."""

from core.digests import sha256_hex


def test_a_text_and_its_utf8_bytes_have_the_same_lowercase_hex_digest():
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2

    assert sha256_hex("abc") == expected
    assert sha256_hex(b"abc") == expected
    assert sha256_hex("café") == sha256_hex("café".encode())
