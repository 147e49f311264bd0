"""Sealing at rest (sidecar.auth.seal): AES-GCM bound to a server key, the cookie's secret and
the record's key; key rotation; every tampering refused.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sidecar.auth.seal import Opened, Sealer, SealError

OLD_KEY = b"o" * 40
NEW_KEY = b"n" * 40
SECRET = b"s" * 32
CONTEXT = b"sidecar:tokens:abc"
PLAINTEXT = b'{"access_token":"at-very-secret","refresh_token":"rt-very-secret"}'


def sealed(sealer: Sealer | None = None) -> bytes:
    return (sealer or Sealer((NEW_KEY,))).seal(PLAINTEXT, secret=SECRET, context=CONTEXT)


def test_round_trip() -> None:
    """What is sealed opens to the same bytes, not stale under the current key."""
    blob = sealed()
    opened = Sealer((NEW_KEY,)).open(blob, secret=SECRET, context=CONTEXT)
    assert opened == Opened(PLAINTEXT, stale_key=False)


def test_empty_plaintext_round_trips() -> None:
    """Zero bytes seal and open too (header plus the 16-byte tag)."""
    sealer = Sealer((NEW_KEY,))
    blob = sealer.seal(b"", secret=SECRET, context=CONTEXT)
    assert len(blob) == 2 + 4 + 12 + 16
    assert sealer.open(blob, secret=SECRET, context=CONTEXT).plaintext == b""


def test_blob_layout_and_no_plaintext_inside() -> None:
    """Version prefix, then key id, nonce and ciphertext; the plaintext is nowhere in it."""
    blob = sealed()
    assert blob.startswith(b"s1")
    assert len(blob) == 2 + 4 + 12 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in blob
    assert b"at-very-secret" not in blob
    assert b"rt-very-secret" not in blob


def test_two_seals_of_the_same_plaintext_differ() -> None:
    """A random nonce each time: equal plaintexts give unrelated blobs that both open."""
    sealer = Sealer((NEW_KEY,))
    first, second = sealed(sealer), sealed(sealer)
    assert first != second
    assert first[6:18] != second[6:18]  # the nonces
    assert sealer.open(first, secret=SECRET, context=CONTEXT).plaintext == PLAINTEXT
    assert sealer.open(second, secret=SECRET, context=CONTEXT).plaintext == PLAINTEXT


def flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


@pytest.mark.parametrize(
    ("label", "mutate"),
    [
        ("key id byte", lambda b: flip(b, 3)),
        ("nonce byte", lambda b: flip(b, 10)),
        ("ciphertext byte", lambda b: flip(b, 20)),
        ("tag byte", lambda b: flip(b, len(b) - 1)),
        ("truncated tag", lambda b: b[:-1]),
        ("truncated to header", lambda b: b[:18]),
        ("truncated inside header", lambda b: b[:10]),
        ("empty", lambda _b: b""),
        ("foreign version", lambda b: b"s2" + b[2:]),
        ("no version", lambda b: b[2:]),
        ("appended byte", lambda b: b + b"\x00"),
    ],
)
def test_tampered_blobs_are_refused(label: str, mutate: Callable[[bytes], bytes]) -> None:
    """Any changed, missing or extra byte, or another version prefix, raises SealError."""
    blob = mutate(sealed())
    with pytest.raises(SealError):
        Sealer((NEW_KEY,)).open(blob, secret=SECRET, context=CONTEXT)


def test_wrong_secret_server_key_or_context_cannot_open() -> None:
    """Each of the three inputs is necessary: another secret, key or context opens nothing."""
    blob = sealed()
    with pytest.raises(SealError, match="no key opens this blob"):
        Sealer((NEW_KEY,)).open(blob, secret=b"t" * 32, context=CONTEXT)
    with pytest.raises(SealError, match="no key opens this blob"):
        Sealer((NEW_KEY,)).open(blob, secret=SECRET, context=b"sidecar:tokens:abd")
    with pytest.raises(SealError, match="no key opens this blob"):
        Sealer((OLD_KEY,)).open(blob, secret=SECRET, context=CONTEXT)


def test_rotation_old_blobs_open_and_report_stale_key() -> None:
    """Sealed under the old key: [new, old] opens it and says stale; new alone cannot."""
    blob = sealed(Sealer((OLD_KEY,)))
    rotated = Sealer((NEW_KEY, OLD_KEY))
    assert rotated.open(blob, secret=SECRET, context=CONTEXT) == Opened(PLAINTEXT, stale_key=True)
    with pytest.raises(SealError):
        Sealer((NEW_KEY,)).open(blob, secret=SECRET, context=CONTEXT)
    resealed = rotated.seal(PLAINTEXT, secret=SECRET, context=CONTEXT)
    assert rotated.open(resealed, secret=SECRET, context=CONTEXT).stale_key is False
    assert Sealer((NEW_KEY,)).open(resealed, secret=SECRET, context=CONTEXT).plaintext == (
        PLAINTEXT
    )


def test_a_sealer_needs_a_key() -> None:
    """No server key is a programming error, refused at construction."""
    with pytest.raises(ValueError, match="at least one server key"):
        Sealer(())
