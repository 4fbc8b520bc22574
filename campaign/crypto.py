"""Encryption at rest for channel credentials (Fernet, with key rotation)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialError(RuntimeError):
    """Stored credentials cannot be decrypted with any configured key."""


class CredentialBox:
    """Encrypts with the first key; decrypts with any, so old keys can be rotated out."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    @classmethod
    def for_development(cls, secret_key: str) -> CredentialBox:
        """A key derived from the secret key; the production check refuses to rely on it."""
        digest = hashlib.sha256(b"campaign-credentials:" + secret_key.encode()).digest()
        return cls([base64.urlsafe_b64encode(digest).decode()])

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise CredentialError(
                "credentials cannot be decrypted with the configured keys"
            ) from exc

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as exc:
            raise CredentialError(
                "credentials cannot be decrypted with the configured keys"
            ) from exc


def generate_key() -> str:
    """A fresh Fernet key, for `security.encryption_keys`."""
    return Fernet.generate_key().decode()
