"""WeCom's callback crypto (加解密, WXBizMsgCrypt) on `cryptography`.

- AESKey = base64decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = AESKey[:16].
- Plaintext = 16 random bytes + 4-byte big-endian message length + message + receive id (the
  CorpID for an internal app), padded PKCS#7-style to a multiple of **32** bytes (pad bytes 1..32,
  all equal to the pad length).
- msg_signature = hex sha1 of the sorted, concatenated (token, timestamp, nonce, encrypt).

Every check is strict: a wrong signature, wrong padding, a length field beyond the data, a
receive id of another corp or text that is not base64 raises a `CryptoError` subclass, never
returns garbage. (wechatpy, the usual Python copy, does not check the padding.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16
RANDOM_PREFIX = 16
LENGTH_FIELD = 4


class CryptoError(Exception):
    """A callback that cannot be trusted or read. `reason` is a short code for logs and tests."""

    reason = "invalid"

    def __init__(self, message: str = "", *, reason: str | None = None):
        super().__init__(message or self.reason)
        if reason:
            self.reason = reason


class SignatureError(CryptoError):
    """msg_signature does not match: not from WeCom (or not for our Token)."""

    reason = "bad_signature"


class ReceiveIdError(CryptoError):
    """Decrypted fine but addressed to another corp (receive id ≠ our CorpID)."""

    reason = "wrong_receive_id"


class DecryptError(CryptoError):
    """Not base64, not whole AES blocks, bad padding, or a length field beyond the data."""

    reason = "bad_ciphertext"


def _aes_key(encoding_aes_key: str) -> bytes:
    if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: sha1 over the sorted, concatenated strings (hex)."""
    parts = sorted([str(token), str(timestamp), str(nonce), str(encrypt)])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


def pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def unpad(data: bytes) -> bytes:
    if not data or len(data) % 16:
        raise DecryptError("plaintext is not whole AES blocks", reason="bad_padding")
    n = data[-1]
    if n < 1 or n > BLOCK or n > len(data):
        raise DecryptError("pad byte out of range", reason="bad_padding")
    if data[-n:] != bytes([n]) * n:
        raise DecryptError("inconsistent padding", reason="bad_padding")
    return data[:-n]


class WeComCrypto:
    """One corp's callback crypto: Token, EncodingAESKey and the receive id (CorpID)."""

    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str):
        self.token = token
        self.key = _aes_key(encoding_aes_key)
        self.iv = self.key[:16]
        self.receive_id = receive_id

    # -- signatures

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return signature(self.token, timestamp, nonce, encrypt)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        if not isinstance(msg_signature, str) or not hmac.compare_digest(
            expected.encode("ascii"), msg_signature.strip().lower().encode("utf-8", "replace")
        ):
            raise SignatureError("msg_signature does not match")

    # -- AES

    def encrypt(self, message: bytes | str, *, random: bytes | None = None, receive_id: str | None = None) -> str:
        """Base64 ciphertext of `message` for our receive id (or another one, for tests)."""
        if isinstance(message, str):
            message = message.encode("utf-8")
        random = os.urandom(RANDOM_PREFIX) if random is None else random
        if len(random) != RANDOM_PREFIX:
            raise ValueError("random prefix must be 16 bytes")
        rid = (self.receive_id if receive_id is None else receive_id).encode("utf-8")
        plain = pad(random + struct.pack(">I", len(message)) + message + rid)
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside `encrypt`, after checking padding, length and receive id."""
        if not isinstance(encrypt, str) or not encrypt:
            raise DecryptError("empty ciphertext", reason="not_base64")
        try:
            raw = base64.b64decode(encrypt.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("ciphertext is not base64", reason="not_base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("ciphertext is not whole AES blocks", reason="truncated")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).decryptor()
        plain = unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < RANDOM_PREFIX + LENGTH_FIELD:
            raise DecryptError("plaintext too short", reason="truncated")
        (length,) = struct.unpack(">I", plain[RANDOM_PREFIX : RANDOM_PREFIX + LENGTH_FIELD])
        body = plain[RANDOM_PREFIX + LENGTH_FIELD :]
        if length > len(body):
            raise DecryptError("length field beyond the data", reason="bad_length")
        message, rid = body[:length], body[length:]
        if not hmac.compare_digest(rid, self.receive_id.encode("utf-8")):
            raise ReceiveIdError("message is for another receive id")
        return message

    # -- the two callback shapes

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL check (GET): verify and decrypt echostr; answer its plaintext as is."""
        self.verify(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr).decode("utf-8")

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """An event (POST): verify the signature over the Encrypt text and decrypt it."""
        self.verify(msg_signature, timestamp, nonce, encrypt)
        try:
            return self.decrypt(encrypt).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError("message is not UTF-8", reason="not_utf8") from exc

    def encrypt_message(self, xml: str, *, timestamp: str, nonce: str, agent_id: str = "") -> tuple[str, str]:
        """What WeCom POSTs: (envelope XML, msg_signature). Used by the simulator."""
        encrypt = self.encrypt(xml)
        envelope = (
            f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
        )
        return envelope, self.signature(timestamp, nonce, encrypt)
