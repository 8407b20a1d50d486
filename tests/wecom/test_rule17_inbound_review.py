"""Rule 17, inbound, found in review: the crypto checks no other test would miss if they loosened."""

from __future__ import annotations

import pytest

from tests.wecom.test_crypto import body, crypto, raw_encrypt  # noqa: F401 - the fixture
from wecom.crypto import DecryptError


def test_a_pad_longer_than_wecoms_32_bytes_is_refused_even_when_consistent(crypto):  # noqa: F811
    """WeCom pads to 32 bytes: 48 bytes of 0x30 is consistent PKCS#7 but never WeCom's padding."""
    message = body(b"hello")
    message += b"R" * (-len(message) % 16)  # whole AES blocks before the pad
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(raw_encrypt(crypto, message + bytes([48]) * 48))
    assert exc.value.reason == "bad_padding"


@pytest.mark.parametrize("junk", ["!", "\n", " ", "*"])
def test_ciphertext_with_characters_outside_base64_is_refused_not_skipped(crypto, junk):  # noqa: F811
    good = crypto.encrypt("<xml><Event>x</Event></xml>")
    assert crypto.decrypt(good) == b"<xml><Event>x</Event></xml>"
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(good[:20] + junk + good[20:])
    assert exc.value.reason == "not_base64"
