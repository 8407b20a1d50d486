"""The i18n scanner: walks every page of the portal a logged-in user can reach and reports what the
other language leaks into it.

- Walking: from the front page, the sidebar (`/m/`) and every registered admin model's list and add
  page, follow every same-site link of every HTML page (a few query-string variants per URL name, so
  10,000 customer pages cost three visits). Anything that is not an HTML page (exports, JSON) is
  skipped, as are links that act (logout, language switch) and the API.
- Reading: the visible text of each page (not scripts, styles or JSON data), plus the attributes a
  user reads (title, placeholder, aria-label, alt, button values) and the string literals of inline
  scripts (messages the page's JavaScript writes).
- English pages: no Chinese character (an untranslated msgid: the data the scan runs on is ASCII) and
  no full-width punctuation (，。：；！？（）、【】…).
- Chinese pages: no half-width punctuation glued to Chinese text ("已保存." "名称:"), no ASCII
  parentheses around Chinese text, and none of Django's leftovers the portal renames.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAS_CJK = re.compile(f"[{CJK}]")
QUOTED = re.compile("“[^”]*”")
# Chinese punctuation and the full-width forms of ASCII (！ to ～). Curly quotes, "…" and "—" are English too.
FULL_WIDTH_PUNCTUATION = re.compile("[\u3000-\u303f\uff01-\uff5e]")
# Chinese text followed by ASCII punctuation ("已保存." "名称:" "组, 标签"), or ASCII parentheses around it.
HALF_WIDTH_AFTER_CJK = re.compile(f"[{CJK}][,.:;!?](?=\\s|$|[{CJK}])")
ASCII_PARENS_AROUND_CJK = re.compile(f"\\([^()]*[{CJK}][^()]*\\)")
# Django's own Chinese that reads wrong in the portal (issue 14): app names and messages it renames.
DJANGO_LEFTOVERS = ("认证和授权", "最近动作", "您可以在下面再次编辑它", "我的动作", "无可用的")

# Always bilingual on purpose: the language switch.
ALLOWED_TEXT = {"简体中文", "语言 / Language", "Language / 语言", "English"}

SKIP_PREFIXES = ("/static/", "/media/", "/api/", "/i18n/", "/logout/", "/wecom/callback")
SKIP_URL_NAMES = {"logout", "set_language", "jsi18n"}
VARIANTS_PER_NAME = 3
MAX_PAGES = 600

READ_ATTRIBUTES = ("title", "placeholder", "aria-label")  # not alt: Django writes "(help text)" there


class _PageText(HTMLParser):
    """Visible text nodes, the attributes users read, inline scripts' string literals, and links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.script_strings: list[str] = []
        self.links: list[str] = []
        self._skip = 0  # inside <style>, <script type=json>, <template>
        self._script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        for name in READ_ATTRIBUTES:
            if attrs.get(name):
                self.texts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])
        if tag == "script":
            if (attrs.get("type") or "text/javascript") in ("text/javascript", "module"):
                self._script = True
            else:
                self._skip += 1
        elif tag in ("style", "template"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "script":
            if self._script:
                self._script = False
            else:
                self._skip = max(self._skip - 1, 0)
        elif tag in ("style", "template"):
            self._skip = max(self._skip - 1, 0)

    def handle_data(self, data):
        if self._script:
            code = re.sub(r"(?m)^\s*//.*$|/\*.*?\*/", "", data, flags=re.S)
            self.script_strings += [m.group(2) for m in re.finditer(r"(['\"`])((?:\\.|(?!\1).)*)\1", code)]
        elif not self._skip and data.strip():
            self.texts.append(data.strip())


@dataclass
class Finding:
    url: str
    user: str
    language: str
    problem: str
    text: str

    def __str__(self):
        return f"[{self.language} {self.user}] {self.url}: {self.problem}: {self.text[:120]!r}"


def problems(text: str, language: str) -> list[str]:
    """What is wrong with one piece of visible text in this UI language."""
    if text in ALLOWED_TEXT:
        return []
    found = []
    if language == "en":
        # A Chinese example in quotes is data, not an untranslated msgid: 'e.g. “想了解一下价格”'.
        if HAS_CJK.search(QUOTED.sub("", text)):
            found.append("Chinese text in the English UI (untranslated msgid)")
        if FULL_WIDTH_PUNCTUATION.search(text):
            found.append("full-width punctuation in the English UI")
    else:
        if HALF_WIDTH_AFTER_CJK.search(text):
            found.append("half-width punctuation after Chinese text")
        if ASCII_PARENS_AROUND_CJK.search(text):
            found.append("ASCII parentheses around Chinese text")
        for leftover in DJANGO_LEFTOVERS:
            if leftover in text:
                found.append(f"Django leftover {leftover!r}")
    return found


def page_findings(html: str, *, url: str, user: str, language: str) -> tuple[list[Finding], list[str]]:
    parser = _PageText()
    parser.feed(html)
    findings = []
    for text in parser.texts:
        for problem in problems(text, language):
            findings.append(Finding(url, user, language, problem, text))
    for text in parser.script_strings:
        if len(text) < 2:
            continue  # a key or a separator the script compares with ("，" typed in a Chinese IME)
        for problem in problems(text, language):
            findings.append(Finding(url, user, language, "in a script: " + problem, text))
    return findings, parser.links


@dataclass
class Walk:
    pages: dict[str, int] = field(default_factory=dict)  # url -> status
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _start_urls(extra: tuple[str, ...] = ()) -> list[str]:
    urls = ["/", *extra]
    for model in admin.site._registry:
        for view in ("changelist", "add"):
            with contextlib.suppress(NoReverseMatch):
                urls.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"))
    return urls


def _url_key(path: str, query: str) -> str | None:
    """The URL name this page shows (with the shape of its query), or None to skip it."""
    if path.startswith(SKIP_PREFIXES):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    name = match.view_name or match.func.__name__
    if match.url_name in SKIP_URL_NAMES or name.endswith(("_cancel", "_undo", "_export", "_count")):
        return None
    keys = ",".join(sorted({k for k, _v in parse_qsl(query)} - {"p", "page", "o"}))
    return f"{name}?{keys}"


def walk(user, language: str, *, extra_start: tuple[str, ...] = (), max_pages: int = MAX_PAGES) -> Walk:
    """Visit every page `user` reaches from the start pages, in `language` ("zh-hans" or "en")."""
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = language
    result = Walk()
    per_key: dict[str, int] = defaultdict(int)
    queue = list(dict.fromkeys(_start_urls(extra_start)))
    seen = set(queue)
    while queue and len(result.pages) < max_pages:
        url = queue.pop(0)
        parts = urlsplit(url)
        key = _url_key(parts.path, parts.query)
        if key is None or per_key[key] >= VARIANTS_PER_NAME:
            continue
        per_key[key] += 1
        response = client.get(url)
        result.pages[url] = response.status_code
        if response.status_code >= 500:
            result.errors.append(f"{url}: {response.status_code}")
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        findings, links = page_findings(html, url=url, user=user.userid, language=language)
        result.findings += findings
        for href in links:
            target = urlsplit(href)
            if (target.scheme or target.netloc or not target.path) and (target.path or not target.query):
                continue
            path = target.path or parts.path
            if not path.startswith("/"):
                continue
            link = path + (f"?{target.query}" if target.query else "")
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return result


def report(findings: list[Finding], limit: int = 80) -> str:
    """One line per distinct (problem, text), with the first page it was seen on."""
    first: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        first.setdefault((f.language, f.problem, f.text), f)
    lines = [str(f) for f in first.values()]
    more = f"\n… and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more
