"""Encryption of secrets at rest (AES-256-GCM bound to the cell the value lives in).

Stored value (base64url text)::

    version (1 byte, = 1) | key_id_length (1 byte) | key_id (ascii) | nonce (12) | ciphertext+tag

The associated data binds each ciphertext to its cell -- format version, table, column and tenant
id, each as a 4-byte big-endian length followed by UTF-8 bytes -- so a value copied to another
tenant, table or column does not decrypt. Keys are named; the key id in the envelope picks the key
(no trial decryption). Every failure raises a :class:`CryptoError`; the raw value is never returned.
Messages and reprs never contain key material or plaintext.

This module is Flask-free: it imports only the standard library and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "FORMAT_VERSION",
    "Cell",
    "CryptoError",
    "DecryptionError",
    "KeyConfigurationError",
    "Keyring",
    "UnknownKeyError",
    "generate_key",
]

FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
CONFIG_NAME = "CONNECTWISE_ENCRYPTION_KEYS"
_FIX_HINT = f"set {CONFIG_NAME}, e.g. run `flask connectwise keys generate`"
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_KEY_ID_RULE = "1-32 characters of A-Z a-z 0-9 _ . -"
_STD_B64_RE = re.compile(r"[A-Za-z0-9+/]*=*")
_URL_B64_RE = re.compile(r"[A-Za-z0-9_-]*=*")
_MIN_ENVELOPE = 2 + 1 + NONCE_BYTES + TAG_BYTES


class CryptoError(Exception):
    """Base class. Messages never contain key material or plaintext."""


class KeyConfigurationError(CryptoError):
    """The configured keys are missing, malformed or duplicated."""


class UnknownKeyError(CryptoError):
    """The envelope names a key id that is not configured."""

    def __init__(self, message: str, *, key_id: str | None = None, cell: Cell | None = None):
        super().__init__(message)
        self.key_id = key_id
        self.cell = cell


class DecryptionError(CryptoError):
    """The value is not a valid token for this cell (tampered, truncated, wrong key, plaintext)."""

    def __init__(self, message: str, *, key_id: str | None = None, cell: Cell | None = None):
        super().__init__(message)
        self.key_id = key_id
        self.cell = cell


@dataclass(frozen=True)
class Cell:
    """Where a value lives: the table, the column and the tenant it belongs to."""

    table: str
    column: str
    tenant: str

    def __post_init__(self) -> None:
        for name in ("table", "column", "tenant"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Cell.{name} must be str")

    def __str__(self) -> str:
        return f"{self.table}.{self.column} for tenant {self.tenant!r}"

    def associated_data(self) -> bytes:
        """Length-prefixed (format version, table, column, tenant), the AES-GCM associated data."""
        parts = (str(FORMAT_VERSION), self.table, self.column, self.tenant)
        out = bytearray()
        for part in parts:
            raw = part.encode("utf-8", "surrogatepass")
            out += struct.pack(">I", len(raw))
            out += raw
        return bytes(out)


def _where(cell: Cell | None) -> str:
    return f" in {cell}" if cell is not None else ""


def _b64decode(text: str, *, urlsafe: bool) -> bytes:
    """Decode base64 strictly (one alphabet, no stray characters), tolerating missing padding."""
    pattern = _URL_B64_RE if urlsafe else _STD_B64_RE
    if not pattern.fullmatch(text):
        raise ValueError("not base64")
    body = text.rstrip("=")
    if len(text) - len(body) > 2:
        raise ValueError("bad padding")
    padded = body + "=" * (-len(body) % 4)
    try:
        if urlsafe:
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        pass
    raise ValueError("not base64")  # outside the except block: no __context__ attached


def _decode_material(text: str) -> bytes | None:
    for urlsafe in (False, True):
        try:
            return _b64decode(text, urlsafe=urlsafe)
        except ValueError:
            continue
    return None


def _parse_entries(keys: object) -> list[str]:
    if keys is None:
        raise KeyConfigurationError(f"no encryption keys configured; {_FIX_HINT}")
    if isinstance(keys, str):
        entries = [part.strip() for part in keys.split(",")]
        entries = [part for part in entries if part]
    elif isinstance(keys, bytes | bytearray) or not isinstance(keys, Sequence):
        raise KeyConfigurationError(
            f"{CONFIG_NAME} must be a list of 'id:base64key' strings "
            f"(got {type(keys).__name__}); {_FIX_HINT}"
        )
    else:
        entries = []
        for index, entry in enumerate(keys, start=1):
            if not isinstance(entry, str):
                raise KeyConfigurationError(
                    f"{CONFIG_NAME} entry #{index} must be a string 'id:base64key' "
                    f"(got {type(entry).__name__}); {_FIX_HINT}"
                )
            entries.append(entry.strip())
    if not entries:
        raise KeyConfigurationError(f"no encryption keys configured; {_FIX_HINT}")
    return entries


class Keyring:
    """Named AES-256-GCM keys: the first encrypts, every one decrypts."""

    __slots__ = ("_ciphers", "key_ids", "primary_key_id")

    primary_key_id: str
    key_ids: tuple[str, ...]

    def __init__(self, keys: Sequence[str] | str | None) -> None:
        ciphers: dict[str, AESGCM] = {}
        for index, entry in enumerate(_parse_entries(keys), start=1):
            key_id, sep, material = entry.partition(":")
            key_id, material = key_id.strip(), material.strip()
            if not sep:
                raise KeyConfigurationError(
                    f"{CONFIG_NAME} entry #{index} is missing the 'id:' prefix; each entry must "
                    f"look like 'k1:<base64 of 32 bytes>'; {_FIX_HINT}"
                )
            if not _KEY_ID_RE.fullmatch(key_id):
                raise KeyConfigurationError(
                    f"{CONFIG_NAME} entry #{index} has an invalid key id (must be {_KEY_ID_RULE}); "
                    f"{_FIX_HINT}"
                )
            if key_id in ciphers:
                raise KeyConfigurationError(
                    f"key id {key_id!r} appears more than once in {CONFIG_NAME}; give each key a "
                    f"unique id; {_FIX_HINT}"
                )
            raw = _decode_material(material)
            if raw is None:
                raise KeyConfigurationError(
                    f"key {key_id!r} in {CONFIG_NAME} is not valid base64; {_FIX_HINT}"
                )
            if len(raw) != KEY_BYTES:
                raise KeyConfigurationError(
                    f"key {key_id!r} in {CONFIG_NAME} decodes to {len(raw)} bytes, AES-256 needs "
                    f"exactly {KEY_BYTES}; {_FIX_HINT}"
                )
            ciphers[key_id] = AESGCM(raw)
        self._ciphers = ciphers
        self.key_ids = tuple(ciphers)
        self.primary_key_id = self.key_ids[0]

    @classmethod
    def from_config(cls, value: object) -> Keyring:
        """Build a keyring from a config value (list of 'id:b64' or one comma-separated string)."""
        if isinstance(value, Keyring):
            return value
        return cls(value)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Keyring(primary_key_id={self.primary_key_id!r}, key_ids={self.key_ids!r})"

    __str__ = __repr__

    # -- envelope ---------------------------------------------------------------------------

    def _parse(self, token: object, cell: Cell | None) -> tuple[str, bytes, bytes]:
        """Split a token into (key id, nonce, ciphertext+tag); DecryptionError if malformed."""
        where = _where(cell)
        if not isinstance(token, str):
            raise DecryptionError(
                f"encrypted value{where} must be text, got {type(token).__name__}", cell=cell
            )
        try:
            blob: bytes | None = _b64decode(token, urlsafe=True)
        except ValueError:
            blob = None
        if blob is None:
            raise DecryptionError(
                f"value{where} is not an encrypted token (plaintext or corrupted data?)", cell=cell
            )
        if len(blob) < 2:
            raise DecryptionError(f"encrypted value{where} is truncated", cell=cell)
        version, id_len = blob[0], blob[1]
        if version != FORMAT_VERSION:
            raise DecryptionError(
                f"value{where} has unknown format version {version} (expected {FORMAT_VERSION}); "
                "is it plaintext or corrupted?",
                cell=cell,
            )
        try:
            key_id = blob[2 : 2 + id_len].decode("ascii")
        except UnicodeDecodeError:
            key_id = ""
        if not (1 <= id_len <= 32 and len(key_id) == id_len and _KEY_ID_RE.fullmatch(key_id)):
            raise DecryptionError(f"encrypted value{where} has a malformed key id", cell=cell)
        body = blob[2 + id_len :]
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError(
                f"encrypted value{where} (key {key_id!r}) is truncated", key_id=key_id, cell=cell
            )
        return key_id, body[:NONCE_BYTES], body[NONCE_BYTES:]

    def key_id_of(self, token: str) -> str:
        """The key id named in a token's envelope (parse only, no decryption)."""
        return self._parse(token, None)[0]

    def needs_rotation(self, token: str) -> bool:
        """True when the token was not encrypted with the primary key."""
        return self.key_id_of(token) != self.primary_key_id

    # -- operations -------------------------------------------------------------------------

    def encrypt(self, plaintext: str, cell: Cell) -> str:
        """Encrypt text for ``cell`` with the primary key; returns base64url text."""
        if not isinstance(plaintext, str):
            raise TypeError(f"plaintext must be str, got {type(plaintext).__name__}")
        if not isinstance(cell, Cell):
            raise TypeError("cell must be a Cell")
        try:
            data: bytes | None = plaintext.encode("utf-8")
        except UnicodeEncodeError:
            data = None  # raise below, outside the except: the error would carry the plaintext
        if data is None:
            raise CryptoError(f"plaintext for {cell} is not valid Unicode text")
        key_id = self.primary_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, data, cell.associated_data())
        id_raw = key_id.encode("ascii")
        envelope = bytes((FORMAT_VERSION, len(id_raw))) + id_raw + nonce + sealed
        return base64.urlsafe_b64encode(envelope).decode("ascii")

    def decrypt(self, token: str, cell: Cell) -> str:
        """Decrypt a token stored in ``cell``; raises instead of ever returning the raw value."""
        if not isinstance(cell, Cell):
            raise TypeError("cell must be a Cell")
        key_id, nonce, sealed = self._parse(token, cell)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"value in {cell} was encrypted with key {key_id!r}, which is not configured "
                f"(configured: {', '.join(self.key_ids)}); add it back to {CONFIG_NAME}",
                key_id=key_id,
                cell=cell,
            )
        try:
            return cipher.decrypt(nonce, sealed, cell.associated_data()).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            pass  # raise below, outside the except: no __context__ carrying decrypted bytes
        raise DecryptionError(
            f"cannot decrypt value in {cell} with key {key_id!r}: it was tampered with, "
            "truncated, copied from another cell, or the key material is wrong",
            key_id=key_id,
            cell=cell,
        )

    def verify(self, token: str, cell: Cell) -> str:
        """The id of the key that decrypts ``token`` in ``cell``: it is really decrypted (the
        text is thrown away), so a wrong key under the right id raises :class:`DecryptionError`.
        Reading the key id alone (:meth:`key_id_of`) proves nothing about the key."""
        self.decrypt(token, cell)
        return self.key_id_of(token)

    def reencrypt(self, token: str, cell: Cell) -> str:
        """Decrypt with whichever key the token names, then encrypt with the primary key."""
        return self.encrypt(self.decrypt(token, cell), cell)


def generate_key(key_id: str | None = None) -> str:
    """A new config entry ``"<id>:<urlsafe base64 of 32 random bytes>"``.

    Without ``key_id`` the id is ``k<YYYYMMDD>-<4 hex>`` (UTC date).
    """
    if key_id is None:
        key_id = f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
    elif not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise KeyConfigurationError(f"invalid key id (must be {_KEY_ID_RULE})")
    material = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")
    return f"{key_id}:{material}"
