"""Punctuation that follows the UI language: Chinese pages join names with "、" and wrap asides in
"（…）"; English pages get ", " and " (…)". Every list or aside built in Python for a page goes
through these, so no full-width punctuation reaches the English UI (the i18n scan checks it)."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext, pgettext


def join_list(items: Iterable) -> str:
    """"张伟、王静" / "Zhang Wei, Wang Jing"."""
    return pgettext("list separator", "、").join(str(i) for i in items)


def join_parts(items: Iterable) -> str:
    """Clauses: "已转接 3，已合并 1" / "moved 3, merged 1"."""
    return pgettext("clause separator", "，").join(str(i) for i in items)


def join_sentences(items: Iterable) -> str:
    """"原因一；原因二" / "reason one; reason two"."""
    return pgettext("sentence separator", "；").join(str(i) for i in items)


def aside(text) -> str:
    """"（已离职）" / " (departed)": an aside after a name."""
    return gettext("（%(text)s）") % {"text": text}


def labelled(label, value) -> str:
    """"名称：值" / "Name: value"."""
    return gettext("%(label)s：%(value)s") % {"label": label, "value": value}


def seconds_text(seconds: float) -> str:
    """A duration as people read it: "不到 0.1 秒", "3.2 秒", "2 分 05 秒" (never "0.0 s")."""
    if seconds < 0.1:
        return gettext("不到 0.1 秒")
    if seconds < 60:
        return gettext("%(s).1f 秒") % {"s": seconds}
    minutes, rest = divmod(int(round(seconds)), 60)
    return gettext("%(m)d 分 %(s)02d 秒") % {"m": minutes, "s": rest}
