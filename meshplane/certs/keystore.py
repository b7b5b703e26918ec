"""Keys at rest: private keys are stored encrypted with a key only the control plane holds.

The secret comes from MESHPLANE_SECRET_KEY, or a key file; when neither exists (development), a
random one is generated into the key file with a loud warning. Fernet (AES-128-CBC + HMAC-SHA256,
from `cryptography`) authenticates what it decrypts, so a tampered row fails instead of yielding a
wrong key. (Node tokens are not derived from it: they are issued and stored hashed, see
`meshplane.store.TokenRepo`, so each can be revoked.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["SecretBox", "load_secret"]

log = logging.getLogger(__name__)


def _derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


class SecretBox:
    """Encrypts keys for the database with a key derived from the control plane's secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, "meshplane/keys-at-rest")))

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def open(self, sealed: bytes) -> bytes:
        """Decrypt; ValueError if the data was not sealed with this secret or was altered."""
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken:
            raise ValueError(
                "cannot decrypt a stored key: wrong MESHPLANE_SECRET_KEY or altered data"
            ) from None


def load_secret(secret: str | None, key_file: Path) -> bytes:
    """The control plane's secret: `secret` if given, else the key file, else a new key file."""
    if secret:
        return secret.encode()
    if key_file.exists():
        return key_file.read_bytes().strip()
    generated = secrets.token_urlsafe(32).encode()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(generated + b"\n")
    log.warning(
        "generated a new secret key in %s: private keys in the database are encrypted with it. "
        "Fine for development; in production set "
        "MESHPLANE_SECRET_KEY (the same on every replica) and keep it safe.",
        key_file,
    )
    return generated
