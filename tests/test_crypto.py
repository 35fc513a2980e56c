"""Secrets at rest: AES-256-GCM envelopes bound to their cell, named keys, rotation, fail closed.

Modelled on Rails' activerecord/test/cases/encryption/ suite, plus what Rails lacks: cell binding,
key ids in the envelope, per-byte tamper checks, rotation helpers and leak checks.
All key material is generated per test; none is hard-coded.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_connectwise.crypto import (
    Cell,
    CryptoError,
    DecryptionError,
    KeyConfigurationError,
    Keyring,
    UnknownKeyError,
    generate_key,
)

CELL = Cell("connectwise_credentials", "private_key", "acme")
FIX_HINT = "flask connectwise keys generate"


def decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encode(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).decode("ascii")


def material_of(entry: str) -> str:
    return entry.partition(":")[2]


@pytest.fixture
def ring() -> Keyring:
    return Keyring([generate_key("k1")])


# -- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    ["", "s3cret", "Ünïcødé ✓ 🔑 日本語 עברית", "nul\x00byte", "x" * 10_000, " padded \n"],
)
def test_round_trip(ring: Keyring, plaintext: str) -> None:
    token = ring.encrypt(plaintext, CELL)
    assert token != plaintext
    assert ring.decrypt(token, CELL) == plaintext


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_round_trip_any_text(plaintext: str) -> None:
    ring = Keyring([generate_key("k1")])
    assert ring.decrypt(ring.encrypt(plaintext, CELL), CELL) == plaintext


def test_two_encryptions_of_the_same_value_differ(ring: Keyring) -> None:
    tokens = {ring.encrypt("same", CELL) for _ in range(50)}
    assert len(tokens) == 50
    nonces = {decode(t)[4:16] for t in tokens}
    assert len(nonces) == 50
    assert all(ring.decrypt(t, CELL) == "same" for t in tokens)


def test_envelope_layout(ring: Keyring) -> None:
    token = ring.encrypt("abc", CELL)
    assert re.fullmatch(r"[A-Za-z0-9_-]+=*", token)
    blob = decode(token)
    assert blob[0] == 1
    assert blob[1] == 2
    assert blob[2:4] == b"k1"
    assert len(blob) == 1 + 1 + 2 + 12 + len(b"abc") + 16
    assert ring.key_id_of(token) == "k1"


def test_decoding_tolerates_missing_padding(ring: Keyring) -> None:
    for plaintext in ("", "a", "ab", "abc"):
        token = ring.encrypt(plaintext, CELL)
        assert ring.decrypt(token.rstrip("="), CELL) == plaintext


def test_cell_str() -> None:
    assert str(CELL) == "connectwise_credentials.private_key for tenant 'acme'"


# -- wrong key, tampering, truncation, version --------------------------------------------------


def test_wrong_key_material_with_same_id_raises() -> None:
    writer = Keyring([generate_key("k1")])
    reader = Keyring([generate_key("k1")])
    token = writer.encrypt("value", CELL)
    with pytest.raises(DecryptionError) as info:
        reader.decrypt(token, CELL)
    assert "'k1'" in str(info.value)
    assert str(CELL) in str(info.value)
    assert info.value.key_id == "k1"
    assert info.value.cell == CELL


def test_verify_decrypts_so_a_wrong_key_under_the_right_id_fails() -> None:
    writer = Keyring([generate_key("k1")])
    token = writer.encrypt("s3cret-plain", CELL)
    assert writer.verify(token, CELL) == "k1"
    impostor = Keyring([generate_key("k1")])
    assert impostor.key_id_of(token) == "k1"  # the envelope alone proves nothing
    assert impostor.needs_rotation(token) is False
    with pytest.raises(DecryptionError) as info:
        impostor.verify(token, CELL)
    assert info.value.key_id == "k1" and "s3cret-plain" not in str(info.value)
    with pytest.raises(UnknownKeyError):
        Keyring([generate_key("k2")]).verify(token, CELL)


def test_every_flipped_byte_raises() -> None:
    ring = Keyring([generate_key("k1"), generate_key("k2")])
    blob = decode(ring.encrypt("tamper me", CELL))
    for position in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(blob)
            tampered[position] ^= mask
            with pytest.raises((DecryptionError, UnknownKeyError)):
                ring.decrypt(encode(bytes(tampered)), CELL)


def test_every_flipped_key_id_byte_to_another_configured_key_raises() -> None:
    ring = Keyring([generate_key("k1"), generate_key("k2")])
    blob = bytearray(decode(ring.encrypt("value", CELL)))
    blob[3] = ord("2")  # k1 -> k2, a configured key: the tag must still fail
    with pytest.raises(DecryptionError, match="'k2'"):
        ring.decrypt(encode(bytes(blob)), CELL)


def test_truncated_tag_raises(ring: Keyring) -> None:
    blob = decode(ring.encrypt("value", CELL))
    for cut in range(1, len(blob)):
        with pytest.raises(DecryptionError):
            ring.decrypt(encode(blob[:-cut]), CELL)


def test_appended_bytes_raise(ring: Keyring) -> None:
    blob = decode(ring.encrypt("value", CELL))
    with pytest.raises(DecryptionError):
        ring.decrypt(encode(blob + b"\x00"), CELL)


@pytest.mark.parametrize("version", [0, 2, 0x7F, 0xFF])
def test_unknown_version_raises(ring: Keyring, version: int) -> None:
    blob = bytearray(decode(ring.encrypt("value", CELL)))
    blob[0] = version
    with pytest.raises(DecryptionError, match="version") as info:
        ring.decrypt(encode(bytes(blob)), CELL)
    assert str(CELL) in str(info.value)


def test_unknown_key_id_raises_naming_it() -> None:
    writer = Keyring([generate_key("k9")])
    reader = Keyring([generate_key("k1")])
    token = writer.encrypt("value", CELL)
    with pytest.raises(UnknownKeyError) as info:
        reader.decrypt(token, CELL)
    assert "'k9'" in str(info.value)
    assert str(CELL) in str(info.value)
    assert info.value.key_id == "k9"
    assert info.value.cell == CELL
    assert isinstance(info.value, CryptoError)


# -- cell binding (Rails binds nothing) ---------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        Cell("connectwise_credentials", "private_key", "globex"),
        Cell("connectwise_credentials", "public_key", "acme"),
        Cell("other_table", "private_key", "acme"),
        Cell("connectwise_credentials", "private_key", "acme "),
        Cell("connectwise_credentials", "private_key", ""),
    ],
    ids=["tenant", "column", "table", "tenant-whitespace", "tenant-empty"],
)
def test_ciphertext_moved_to_another_cell_fails(ring: Keyring, other: Cell) -> None:
    token = ring.encrypt("value", CELL)
    with pytest.raises(DecryptionError) as info:
        ring.decrypt(token, other)
    assert str(other) in str(info.value)


def test_associated_data_is_length_prefixed(ring: Keyring) -> None:
    # Without length prefixes ("ab", "c") and ("a", "bc") would concatenate identically.
    token = ring.encrypt("value", Cell("ab", "c", "t"))
    with pytest.raises(DecryptionError):
        ring.decrypt(token, Cell("a", "bc", "t"))
    token = ring.encrypt("value", Cell("t", "c", "1"))
    with pytest.raises(DecryptionError):
        ring.decrypt(token, Cell("t", "c1", ""))


# -- key rotation -------------------------------------------------------------------------------


def test_old_key_still_decrypts_after_new_primary_is_added() -> None:
    old = generate_key("k1")
    token = Keyring([old]).encrypt("value", CELL)
    rotated = Keyring([generate_key("k2"), old])
    assert rotated.primary_key_id == "k2"
    assert rotated.key_ids == ("k2", "k1")
    assert rotated.decrypt(token, CELL) == "value"
    assert rotated.key_id_of(rotated.encrypt("new", CELL)) == "k2"


def test_needs_rotation_and_reencrypt_move_value_to_primary() -> None:
    old = generate_key("k1")
    cells = [Cell("connectwise_credentials", "private_key", f"tenant{i}") for i in range(20)]
    values = {cell: f"secret-{cell.tenant}-ü" for cell in cells}
    stored = {cell: Keyring([old]).encrypt(values[cell], cell) for cell in cells}

    ring = Keyring([generate_key("k2"), old])
    assert all(ring.needs_rotation(token) for token in stored.values())
    rotated = {cell: ring.reencrypt(token, cell) for cell, token in stored.items()}
    for cell, token in rotated.items():
        assert ring.key_id_of(token) == "k2"
        assert not ring.needs_rotation(token)
        assert ring.decrypt(token, cell) == values[cell]
    assert len(rotated) == len(stored)


def test_rotated_values_decrypt_without_old_key() -> None:
    old, new = generate_key("k1"), generate_key("k2")
    token = Keyring([old]).encrypt("value", CELL)
    token = Keyring([new, old]).reencrypt(token, CELL)
    assert Keyring([new]).decrypt(token, CELL) == "value"
    with pytest.raises(UnknownKeyError):
        Keyring([old]).decrypt(token, CELL)


def test_reencrypt_refuses_bad_tokens(ring: Keyring) -> None:
    with pytest.raises(DecryptionError):
        ring.reencrypt("plaintext secret", CELL)
    other_cell = Cell("t", "c", "x")
    with pytest.raises(DecryptionError):
        ring.reencrypt(ring.encrypt("value", other_cell), CELL)


def test_key_id_of_and_needs_rotation_on_malformed_raise(ring: Keyring) -> None:
    for bad in ("", "not a token", "AQ", encode(b"\x01\x00" + bytes(40))):
        with pytest.raises(DecryptionError):
            ring.key_id_of(bad)
        with pytest.raises(DecryptionError):
            ring.needs_rotation(bad)


# -- garbage and plaintext in the column --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_decrypt(data: bytes) -> None:
    ring = Keyring([generate_key("k1")])
    with pytest.raises(CryptoError):
        ring.decrypt(encode(data), CELL)
    # Even with a well-formed header naming a configured key.
    with pytest.raises(DecryptionError):
        ring.decrypt(encode(b"\x01\x02k1" + data), CELL)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_decrypts(text: str) -> None:
    ring = Keyring([generate_key("k1")])
    with pytest.raises(CryptoError):
        ring.decrypt(text, CELL)


@pytest.mark.parametrize(
    "plaintext",
    ["", "hunter2", "my private key", "AQJrMQ", "abcd" * 20, "ÿ", "a+b/c==", "k1:abc"],
)
def test_plaintext_in_column_raises(ring: Keyring, plaintext: str) -> None:
    with pytest.raises(DecryptionError) as info:
        ring.decrypt(plaintext, CELL)
    assert str(CELL) in str(info.value)
    if plaintext:
        assert plaintext not in str(info.value)


@pytest.mark.parametrize("value", [None, b"bytes", 42])
def test_non_text_in_column_raises(ring: Keyring, value: object) -> None:
    with pytest.raises(DecryptionError):
        ring.decrypt(value, CELL)  # type: ignore[arg-type]


def test_encrypt_rejects_non_text(ring: Keyring) -> None:
    with pytest.raises(TypeError):
        ring.encrypt(b"bytes", CELL)  # type: ignore[arg-type]


# -- key configuration --------------------------------------------------------------------------


def _b64(n: int, *, urlsafe: bool = False, pad: bool = True) -> str:
    raw = os.urandom(n)
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if pad else text.rstrip("=")


INVALID_CONFIGS: dict[str, Callable[[], object]] = {
    "none": lambda: None,
    "empty-list": lambda: [],
    "empty-string": lambda: "",
    "only-commas": lambda: " , ,",
    "bad-b64": lambda: ["k1:not*base64!!"],
    "mixed-alphabets": lambda: ["k1:ab+d-fgh" + _b64(30)],
    "16-byte-key": lambda: [f"k1:{_b64(16)}"],
    "33-byte-key": lambda: [f"k1:{_b64(33)}"],
    "empty-material": lambda: ["k1:"],
    "bad-id-space": lambda: [f"bad id:{_b64(32)}"],
    "bad-id-slash": lambda: [f"k/1:{_b64(32)}"],
    "bad-id-empty": lambda: [f":{_b64(32)}"],
    "bad-id-too-long": lambda: [f"{'k' * 33}:{_b64(32)}"],
    "bad-id-unicode": lambda: [f"kü:{_b64(32)}"],
    "duplicates": lambda: [generate_key("k1"), generate_key("k1")],
    "duplicates-in-string": lambda: f"{generate_key('k1')},{generate_key('k1')}",
    "missing-colon": lambda: [_b64(32)],
    "non-string-entry": lambda: [generate_key("k1"), 42],
    "bytes": lambda: generate_key("k1").encode(),
    "dict": lambda: {"k1": _b64(32)},
}


@pytest.mark.parametrize("make", INVALID_CONFIGS.values(), ids=INVALID_CONFIGS.keys())
def test_invalid_key_config_raises_helpful_error(make: Callable[[], object]) -> None:
    config = make()
    with pytest.raises(KeyConfigurationError) as info:
        Keyring.from_config(config)
    message = str(info.value)
    assert "CONNECTWISE_ENCRYPTION_KEYS" in message
    assert FIX_HINT in message
    entries = config if isinstance(config, list) else [config]
    for entry in entries:
        if isinstance(entry, str) and ":" in entry and len(material_of(entry)) > 8:
            assert material_of(entry) not in message
    assert isinstance(info.value, CryptoError)


def test_duplicate_error_names_the_id() -> None:
    with pytest.raises(KeyConfigurationError, match="'k1'"):
        Keyring([generate_key("k1"), generate_key("k2"), generate_key("k1")])


def test_short_key_error_says_how_long() -> None:
    with pytest.raises(KeyConfigurationError, match="16 bytes"):
        Keyring([f"k1:{_b64(16)}"])


@pytest.mark.parametrize(
    "material",
    [
        lambda: _b64(32),
        lambda: _b64(32, pad=False),
        lambda: _b64(32, urlsafe=True),
        lambda: _b64(32, urlsafe=True, pad=False),
    ],
    ids=["standard", "standard-unpadded", "urlsafe", "urlsafe-unpadded"],
)
def test_key_material_accepts_standard_and_urlsafe_base64(
    material: Callable[[], str],
) -> None:
    ring = Keyring([f"k1:{material()}"])
    assert ring.decrypt(ring.encrypt("v", CELL), CELL) == "v"


def test_comma_separated_string_config() -> None:
    a, b = generate_key("k2"), generate_key("k1")
    ring = Keyring.from_config(f" {a} , {b} ,")
    assert ring.key_ids == ("k2", "k1")
    assert ring.primary_key_id == "k2"
    same = Keyring.from_config((a, b))
    assert same.decrypt(ring.encrypt("v", CELL), CELL) == "v"
    assert Keyring.from_config(ring) is ring


def test_key_id_limits() -> None:
    ring = Keyring([generate_key("A.b_c-9" + "x" * 25)])
    assert len(ring.primary_key_id) == 32
    assert ring.decrypt(ring.encrypt("v", CELL), CELL) == "v"


# -- generate_key -------------------------------------------------------------------------------


def test_generate_key_default_format() -> None:
    entry = generate_key()
    match = re.fullmatch(r"(k\d{8}-[0-9a-f]{4}):([A-Za-z0-9_-]{43}=)", entry)
    assert match, "unexpected format"
    assert len(base64.urlsafe_b64decode(match.group(2))) == 32
    assert generate_key() != generate_key()
    Keyring([entry])


def test_generate_key_with_id() -> None:
    assert generate_key("prod-2025").startswith("prod-2025:")
    with pytest.raises(KeyConfigurationError):
        generate_key("bad id")


# -- nothing leaks ------------------------------------------------------------------------------


def _texts_of(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), *map(str, exc.args)]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            texts += [str(linked), repr(linked)]
    return texts


def test_no_key_material_or_plaintext_in_messages_or_repr() -> None:
    canary = f"CANARYplain{uuid.uuid4().hex}"
    k1, k2 = generate_key("k1"), generate_key("k2")
    materials = [material_of(k1), material_of(k2)]
    raw_hex = [base64.urlsafe_b64decode(m).hex() for m in materials]
    ring = Keyring([k2, k1])
    old_only = Keyring([k1])
    token = ring.encrypt(canary, CELL)
    blob = decode(token)

    failures: list[Callable[[], object]] = [
        lambda: ring.decrypt(canary, CELL),
        lambda: ring.decrypt(token, Cell("t", "c", "other")),
        lambda: ring.decrypt(encode(blob[:-1]), CELL),
        lambda: ring.decrypt(encode(b"\x02" + blob[1:]), CELL),
        lambda: ring.decrypt(encode(blob[:-1] + bytes([blob[-1] ^ 1])), CELL),
        lambda: old_only.decrypt(token, CELL),
        lambda: Keyring([generate_key("k2")]).decrypt(token, CELL),
        lambda: ring.encrypt(canary + "\ud800", CELL),
        lambda: ring.encrypt(canary.encode(), CELL),  # type: ignore[arg-type]
        lambda: Keyring([k1, k1]),
        lambda: Keyring([k1, materials[1]]),
        lambda: Keyring([f"k3:{materials[0][:22]}"]),
        lambda: Keyring([f"bad id:{materials[0]}"]),
        lambda: Keyring([f"k3:{materials[0]}!"]),
        lambda: Keyring(f"{k1},{k1}"),
    ]
    texts = [repr(ring), str(ring), repr(old_only)]
    for failure in failures:
        with pytest.raises((CryptoError, TypeError)) as info:
            failure()
        texts += _texts_of(info.value)
        if isinstance(info.value, CryptoError):
            assert info.value.__context__ is None  # no chained error carrying the data

    for text in texts:
        assert canary not in text
        for secret in (*materials, *raw_hex, token):
            assert secret not in text
            assert secret[:16] not in text
    assert repr(ring) == "Keyring(primary_key_id='k2', key_ids=('k2', 'k1'))"
