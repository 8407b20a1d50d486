"""The WeCom connection's settings, read at call time (tests and the simulator override them).

Without them the portal runs standalone: no callback is accepted, nothing is sent to WeCom.
"""

from __future__ import annotations

from django.conf import settings

API_SETTINGS = ("WECOM_CORP_ID", "WECOM_SECRET")
CALLBACK_SETTINGS = ("WECOM_CORP_ID", "WECOM_TOKEN", "WECOM_AES_KEY")
DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin"


def _value(name: str) -> str:
    return str(getattr(settings, name, "") or "").strip()


def api_configured() -> bool:
    """The API can be called: corp id and the 客户联系 secret are set."""
    return all(_value(name) for name in API_SETTINGS)


def callback_configured() -> bool:
    """Callbacks can be verified and decrypted: corp id, Token and EncodingAESKey are set."""
    return all(_value(name) for name in CALLBACK_SETTINGS)


def is_configured() -> bool:
    """The portal is connected to a WeCom corp: API and callback settings are all set."""
    return api_configured() and callback_configured()


def corp_id() -> str:
    return _value("WECOM_CORP_ID")


def secret() -> str:
    return _value("WECOM_SECRET")


def token() -> str:
    return _value("WECOM_TOKEN")


def aes_key() -> str:
    return _value("WECOM_AES_KEY")


def api_base() -> str:
    return (_value("WECOM_API_BASE") or DEFAULT_API_BASE).rstrip("/")


def agent_id() -> str:
    return _value("WECOM_AGENT_ID")


def timeout() -> float:
    return float(getattr(settings, "WECOM_TIMEOUT", 10.0) or 10.0)


def crypto():
    """The callback crypto for the configured corp (WXBizMsgCrypt), or None when not configured."""
    from .crypto import WeComCrypto

    if not callback_configured():
        return None
    return WeComCrypto(token=token(), encoding_aes_key=aes_key(), receive_id=corp_id())
