"""The keys of ``LBAAS_SECRET_KEYS``: they seal what the database holds of device credentials
and queued commands, and they make the secret each device's status reports carry.

Sealing is Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``). The first
key seals, every key opens, so a key is rotated by putting a new one first,
running ``lbaas-manage secrets reseal`` and then dropping the old one.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr


class Unsealable(ValueError):
    """Sealed under none of the configured keys (or not sealed at all)."""


class SecretKeys:
    def __init__(self, keys: Sequence[SecretStr]) -> None:
        values = [key.get_secret_value() for key in keys]
        self._values = values
        self._fernet = MultiFernet([Fernet(value) for value in values])
        self._report_keys = [
            hashlib.sha256(b"lbaas report\0" + v.encode()).digest() for v in values
        ]

    def derived(self, purpose: str) -> "SecretKeys":
        """Keys of ``purpose`` alone, made from these (rotated with them): what they seal,
        the keys of another purpose do not open, and the other way round."""
        return SecretKeys([SecretStr(_derived_key(value, purpose)) for value in self._values])

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Unsealable("sealed under none of LBAAS_SECRET_KEYS") from None

    def reseal(self, sealed: str) -> str:
        """The same secret, sealed under the first key."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise Unsealable("sealed under none of LBAAS_SECRET_KEYS") from None

    def report_secret(self, device_id: UUID) -> str:
        """What the agents told of the device sign its status reports with."""
        return _report_secret(self._report_keys[0], device_id)

    def signs_reports(self, device_id: UUID, secret: str) -> bool:
        return any(
            hmac.compare_digest(_report_secret(key, device_id), secret) for key in self._report_keys
        )


def _derived_key(key: str, purpose: str) -> str:
    digest = hmac.new(key.encode(), b"lbaas purpose\0" + purpose.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()


def _report_secret(key: bytes, device_id: UUID) -> str:
    return hmac.new(key, device_id.bytes, hashlib.sha256).hexdigest()


def new_key() -> str:
    return Fernet.generate_key().decode()


def valid_key(key: str) -> bool:
    try:
        Fernet(key)
    except ValueError:
        return False
    return True
