"""The QR images of channel codes, drawn by `segno` (pure Python, PNG and SVG).

Print sizes: 8 cm (a table card), 15 cm (a poster), 50 cm (a banner), at 300 dpi. The SVG is exact
(its width and height are in millimetres); the PNG uses whole pixels per module, so it is the largest
image that fits the size (within one module, ≤ 2 %), and carries 300 dpi in its header.

Standalone, the QR carries the link to the code's public landing page (`/c/<state>/`); with WeCom
connected, the page also shows WeCom's own `qr_code` image (the contact way's).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from django.urls import reverse

DPI = 300
SIZES_CM = (8, 15, 50)
DEFAULT_SIZE_CM = 8
BORDER = 4  # the quiet zone the standard asks for


@dataclass(frozen=True)
class QrImage:
    content: bytes
    content_type: str
    filename: str


def landing_path(code) -> str:
    return reverse("channels:landing", args=[code.state])


def qr_payload(code, request) -> str:
    """What the code's QR encodes: the absolute URL of its landing page."""
    return request.build_absolute_uri(landing_path(code))


def _symbol(payload: str):
    return segno.make(payload, error="m", micro=False)


def size_cm(raw) -> int:
    """`size` query value (8, 15 or 50; default 8) or ValueError."""
    if raw in (None, ""):
        return DEFAULT_SIZE_CM
    value = int(raw) if isinstance(raw, str) and raw.isdigit() else None
    if value not in SIZES_CM:
        raise ValueError(raw)
    return value


def render_png(payload: str, *, cm: int = DEFAULT_SIZE_CM, filename: str = "qr") -> QrImage:
    qr = _symbol(payload)
    modules = qr.symbol_size(border=BORDER)[0]
    target_px = round(cm / 2.54 * DPI)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=max(1, target_px // modules), border=BORDER, dpi=DPI)
    return QrImage(out.getvalue(), "image/png", f"{filename}-{cm}cm.png")


def render_svg(payload: str, *, cm: int = DEFAULT_SIZE_CM, filename: str = "qr") -> QrImage:
    qr = _symbol(payload)
    modules = qr.symbol_size(border=BORDER)[0]
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=cm * 10 / modules, unit="mm", border=BORDER, light="#fff",
            title=filename, xmldecl=True)
    return QrImage(out.getvalue(), "image/svg+xml", f"{filename}-{cm}cm.svg")


def inline_svg(payload: str) -> str:
    """A small inline SVG (thumbnails in the list, the landing page): scales with its box."""
    qr = _symbol(payload)
    out = io.BytesIO()
    qr.save(out, kind="svg", border=2, light="#fff", xmldecl=False, svgns=True, omitsize=True, nl=False)
    return out.getvalue().decode()
