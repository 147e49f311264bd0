"""Sealing records at rest: AES-256-GCM under a key derived from a server key and a per-session
secret that only the browser's cookie carries (the oauth2-proxy "ticket" design).

A Redis dump alone opens nothing (it lacks the cookie secret); a stolen cookie alone opens
nothing (it lacks the server key). Blob layout: ``b"s1" | key id (4) | nonce (12) | ciphertext``.
The first server key seals, every key opens; a blob opened with an older key reports it so the
caller can reseal on its next write.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Opened", "SealError", "Sealer"]

_VERSION = b"s1"
_KEY_ID_LEN = 4
_NONCE_LEN = 12
_HEADER_LEN = len(_VERSION) + _KEY_ID_LEN + _NONCE_LEN
_DERIVED_CACHE = 8192  # sessions x (record, tokens) kept warm


class SealError(Exception):
    """The blob is not ours, was tampered with, or no key (or wrong secret) opens it."""


@dataclass(frozen=True)
class Opened:
    """An opened blob and whether it was sealed under a key other than the current one."""

    plaintext: bytes
    stale_key: bool


class Sealer:
    """Seals and opens blobs bound to a per-session secret and a context (the record's key)."""

    def __init__(self, server_keys: tuple[bytes, ...]) -> None:
        if not server_keys:
            raise ValueError("at least one server key is needed")
        self._keys = [(hashlib.sha256(k).digest()[:_KEY_ID_LEN], k) for k in server_keys]

    @staticmethod
    @functools.lru_cache(maxsize=_DERIVED_CACHE)
    def _derive(server_key: bytes, secret: bytes, context: bytes) -> AESGCM:
        # HKDF is most of the cost of opening a blob; a bounded cache of derived keys (in this
        # process's memory only, like the server keys themselves) makes repeat opens cheap.
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=secret, info=b"sidecar/" + context)
        return AESGCM(hkdf.derive(server_key))

    def seal(self, plaintext: bytes, *, secret: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext`` under the newest server key; ``context`` is authenticated."""
        key_id, key = self._keys[0]
        nonce = os.urandom(_NONCE_LEN)
        sealed = self._derive(key, secret, context).encrypt(nonce, plaintext, context)
        return _VERSION + key_id + nonce + sealed

    def open(self, blob: bytes, *, secret: bytes, context: bytes) -> Opened:
        """Decrypt a blob sealed by ``seal`` with the same secret and context."""
        if len(blob) < _HEADER_LEN or not blob.startswith(_VERSION):
            raise SealError("not a sealed blob")
        key_id = blob[len(_VERSION) : len(_VERSION) + _KEY_ID_LEN]
        nonce = blob[len(_VERSION) + _KEY_ID_LEN : _HEADER_LEN]
        for index, (candidate_id, key) in enumerate(self._keys):
            if candidate_id != key_id:
                continue
            try:
                plaintext = self._derive(key, secret, context).decrypt(
                    nonce, blob[_HEADER_LEN:], context
                )
            except InvalidTag:
                continue
            return Opened(plaintext, stale_key=index > 0)
        raise SealError("no key opens this blob")
