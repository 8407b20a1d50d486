"""WeCom's callback crypto: the published sample, round trips, and every way a message is wrong."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wecom.crypto import DecryptError, ReceiveIdError, SignatureError, WeComCrypto, pad, unpad

TOKEN = "QDG6eK"
CORP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TIMESTAMP = "1409659589"
NONCE = "263014780"
ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"


@pytest.fixture
def crypto():
    return WeComCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)


def raw_encrypt(crypto: WeComCrypto, plain: bytes) -> str:
    """AES-CBC of exactly `plain` (no padding added): to build malformed messages."""
    encryptor = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.iv)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def body(message: bytes, receive_id: bytes = CORP_ID.encode(), length: int | None = None) -> bytes:
    return b"R" * 16 + struct.pack(">I", len(message) if length is None else length) + message + receive_id


def test_published_sample_signature_and_plaintext(crypto):
    assert crypto.signature(TIMESTAMP, NONCE, ECHOSTR) == SIGNATURE
    assert crypto.verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR) == "1616140317555161061"


def test_round_trip_of_an_event(crypto):
    xml = "<xml><Event><![CDATA[change_external_contact]]></Event><Name>王女士 ✓</Name></xml>"
    envelope, signature = crypto.encrypt_message(xml, timestamp="1700000000", nonce="42")
    encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert crypto.decrypt_message(signature, "1700000000", "42", encrypt) == xml


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 43, 44, 45, 1000])
def test_round_trip_every_padding_length(crypto, size):
    message = b"x" * size
    encrypt = crypto.encrypt(message)
    assert len(base64.b64decode(encrypt)) % 32 == 0
    assert crypto.decrypt(encrypt) == message


def test_pad_is_to_32_bytes():
    assert pad(b"") == bytes([32]) * 32
    assert pad(b"a" * 31) == b"a" * 31 + b"\x01"
    assert unpad(pad(b"abc")) == b"abc"


def test_bad_signature(crypto):
    with pytest.raises(SignatureError):
        crypto.verify_url("0" * 40, TIMESTAMP, NONCE, ECHOSTR)
    with pytest.raises(SignatureError):  # signed for another timestamp
        crypto.verify_url(SIGNATURE, "1409659590", NONCE, ECHOSTR)
    other = WeComCrypto(token="another", encoding_aes_key=AES_KEY, receive_id=CORP_ID)
    with pytest.raises(SignatureError):
        other.verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR)


def test_wrong_receive_id(crypto):
    encrypt = crypto.encrypt("<xml/>", receive_id="wwanothercorp")
    with pytest.raises(ReceiveIdError):
        crypto.decrypt(encrypt)
    with pytest.raises(ReceiveIdError):  # a prefix of ours is not ours
        crypto.decrypt(crypto.encrypt("<xml/>", receive_id=CORP_ID[:-1]))


def test_other_key_cannot_read(crypto):
    other = WeComCrypto(token=TOKEN, encoding_aes_key="A" * 42 + "E", receive_id=CORP_ID)
    with pytest.raises((DecryptError, ReceiveIdError)):
        other.decrypt(crypto.encrypt("<xml/>"))


@pytest.mark.parametrize(
    "plain_tail",
    [
        b"\x00" * 32,  # pad byte 0
        bytes([33]) * 32,  # pad byte over 32
        b"\x05" * 31 + b"\x04",  # inconsistent: last says 4, but one of the 4 is 5
        b"\x07" * 30 + b"\x03\x04",  # inconsistent tail
    ],
)
def test_bad_padding(crypto, plain_tail):
    plain = body(b"hello")
    plain = plain[: len(plain) - len(plain) % 32] if len(plain) % 32 else plain
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(raw_encrypt(crypto, plain + plain_tail))
    assert exc.value.reason == "bad_padding"


def test_pad_byte_between_16_and_32_must_be_consistent(crypto):
    message = body(b"abc")
    n = 32 - len(message) % 32
    good = message + bytes([n]) * n
    assert crypto.decrypt(raw_encrypt(crypto, good)) == b"abc"
    bad = message + bytes([n - 1]) * (n - 1) + bytes([n])
    with pytest.raises(DecryptError):
        crypto.decrypt(raw_encrypt(crypto, bad))


def test_length_field_beyond_the_data(crypto):
    plain = pad(body(b"hello", length=10_000))
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(raw_encrypt(crypto, plain))
    assert exc.value.reason == "bad_length"


def test_too_short_for_the_header(crypto):
    plain = pad(b"R" * 10)
    with pytest.raises(DecryptError):
        crypto.decrypt(raw_encrypt(crypto, plain))


def test_truncated_ciphertext(crypto):
    raw = base64.b64decode(crypto.encrypt("<xml>hello</xml>"))
    for cut in (raw[:-1], raw[:-16], raw[:15], b""):
        with pytest.raises(DecryptError):
            crypto.decrypt(base64.b64encode(cut).decode())


@pytest.mark.parametrize("text", ["not base64!!", "%%%%", "abc", "YWJj\x00", "   "])
def test_not_base64(crypto, text):
    with pytest.raises(DecryptError):
        crypto.decrypt(text)


def test_encoding_aes_key_is_checked():
    for bad in ("short", "A" * 44, "!" * 43):
        with pytest.raises(ValueError):
            WeComCrypto(token=TOKEN, encoding_aes_key=bad, receive_id=CORP_ID)
