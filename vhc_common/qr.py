"""The text inside a checkpoint's QR code, signed so that a forged poster is detectable.

Format, version 1 (printable ASCII, about 110 characters, fits a QR code of version 7-8
at error correction level M)::

    VHC1:<checkpoint_id>:<key_id>:<signature>

* ``checkpoint_id`` as registered (``[A-Za-z0-9._-]{1,64}``, so never a ``:``);
* ``key_id``: 8 hex digits, the first 4 bytes of SHA-256 over the raw public key, so keys
  can be rotated (front ends keep every key still printed on a wall);
* ``signature``: Ed25519 over the bytes ``b"vhc-qr/1\\n" + checkpoint_id``, base64url
  without padding (86 characters).

Ed25519 is a public-key signature: front ends hold only the public key
(``GET /v1/qr/keys``), so a leaked front end cannot print valid posters. A scanning front
end verifies the signature before it lets anyone declare at that checkpoint, and reports
or refuses a poster that fails. ``verify_payload`` is the reference verifier; the README
shows the same check in JavaScript.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["QrPayloadError", "QrSigner", "b64url", "parse_payload", "verify_payload"]

VERSION_PREFIX = "VHC1"
DOMAIN = b"vhc-qr/1\n"
_PAYLOAD = re.compile(r"^VHC1:(?P<cp>[A-Za-z0-9._-]{1,64}):(?P<kid>[0-9a-f]{8}):"
                      r"(?P<sig>[A-Za-z0-9_-]{86})$")


class QrPayloadError(ValueError):
    """Not a vhc-watch QR text, an unknown key, or a signature that does not verify."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:8]


@dataclass(frozen=True)
class ParsedPayload:
    checkpoint_id: str
    key_id: str
    signature: bytes


class QrSigner:
    """Signs checkpoint ids with an Ed25519 key made from a 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError(f"the QR signing seed must be 32 bytes, got {len(seed)}")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = _key_id(self.public_raw)

    @classmethod
    def derived(cls, secret: bytes) -> QrSigner:
        """A signer whose seed is derived from another secret (domain-separated HMAC), for
        deployments that set no QR key of their own."""
        return cls(hmac.new(secret, b"vhc-watch qr signing seed v1", hashlib.sha256).digest())

    def payload(self, checkpoint_id: str) -> str:
        signature = self._key.sign(DOMAIN + checkpoint_id.encode())
        return f"{VERSION_PREFIX}:{checkpoint_id}:{self.key_id}:{b64url(signature)}"

    @property
    def public_key_b64url(self) -> str:
        return b64url(self.public_raw)


def parse_payload(text: str) -> ParsedPayload:
    match = _PAYLOAD.match(text.strip())
    if match is None:
        raise QrPayloadError("not a vhc-watch checkpoint code (VHC1:<id>:<key>:<signature>)")
    return ParsedPayload(match["cp"], match["kid"], _unb64url(match["sig"]))


def verify_payload(text: str, public_keys: dict[str, bytes]) -> str:
    """The checkpoint id in a scanned code, once its signature verifies with one of
    ``public_keys`` (key id -> raw 32-byte Ed25519 public key); else ``QrPayloadError``."""
    parsed = parse_payload(text)
    raw = public_keys.get(parsed.key_id)
    if raw is None:
        raise QrPayloadError(f"unknown signing key {parsed.key_id}")
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            parsed.signature, DOMAIN + parsed.checkpoint_id.encode())
    except InvalidSignature as exc:
        raise QrPayloadError("the signature does not match: a forged or altered code") from exc
    return parsed.checkpoint_id
