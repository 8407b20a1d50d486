"""Template filters for punctuation that follows the UI language (see `tagportal.text`)."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, mark_safe
from django.utils.translation import gettext

register = template.Library()

_LABEL = re.compile(r"^([^:<>]{1,80}): ")


@register.filter
def localised_colons(items):
    """Django's delete pages list related objects as "Verbose name: object" with an ASCII colon
    (`admin.utils.get_deleted_objects`); give each the page's own colon ("标签：VIP")."""
    if isinstance(items, (list, tuple)):
        return [localised_colons(item) for item in items]
    text = items if isinstance(items, SafeData) else conditional_escape(items)
    colon = gettext("：")
    return mark_safe(_LABEL.sub(lambda m: m.group(1) + colon, str(text), count=1))  # noqa: S308 - escaped above
