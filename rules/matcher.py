"""The keyword matcher: every live and testing rule's keywords and exclude keywords in one
Aho-Corasick automaton (`pyahocorasick`), built once per rule-set version and cached per process.

Text and keywords are folded the same way (`fold`: NFKC, which turns full-width letters, digits and
punctuation into half-width, then `casefold`), so "ＶＩＰ" matches "vip" and "价格" matches "价格".
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field

import ahocorasick
from django.db.models import Count, Max

from .models import MATCHING_STATUSES, KeywordRule


def fold(text: str) -> str:
    """全角→半角, case folded: how both keywords and messages are compared."""
    return unicodedata.normalize("NFKC", text).casefold()


def fold_with_spans(text: str) -> tuple[str, list[int]]:
    """`fold(text)` and, for each folded character, the index of the original character it came
    from (to highlight a keyword found in the folded text on the original one)."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = fold(char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return "".join(out), origin


@dataclass
class RuleSpec:
    """What matching needs of one rule (loaded with its rule set)."""

    id: int
    name: str
    label: str
    status: str
    keywords: list[str]
    exclude_keywords: list[str]
    directions: frozenset[str]
    min_hits: int
    window_days: int | None
    tags: tuple[int, ...]
    exclude_tags: frozenset[int]
    covered_employees: frozenset[int] | None  # None: every customer
    samples: frozenset[int] = field(default_factory=frozenset)


@dataclass
class Match:
    """What one text did to one rule: the keywords it contains and the exclude keywords it contains
    (both in the rule's own spelling, in the order of the text)."""

    keywords: list[str] = field(default_factory=list)
    excluded_by: list[str] = field(default_factory=list)


class Matcher:
    """One automaton over the keywords of many rules. `match(text)` → {rule id: Match}."""

    def __init__(self, rules: list[RuleSpec]):
        self.rules = {r.id: r for r in rules}
        entries: dict[str, list[tuple[int, bool, str]]] = {}
        for rule in rules:
            for keyword in dict.fromkeys(rule.keywords):
                entries.setdefault(fold(keyword), []).append((rule.id, False, keyword))
            for keyword in dict.fromkeys(rule.exclude_keywords):
                entries.setdefault(fold(keyword), []).append((rule.id, True, keyword))
        entries.pop("", None)
        self.size = len(entries)
        self.automaton = ahocorasick.Automaton()
        for key, value in entries.items():
            self.automaton.add_word(key, tuple(value))
        if entries:
            self.automaton.make_automaton()

    def match_folded(self, folded: str) -> dict[int, Match]:
        found: dict[int, Match] = {}
        if not self.size:
            return found
        for _end, entries in self.automaton.iter(folded):
            for rule_id, exclude, keyword in entries:
                match = found.get(rule_id)
                if match is None:
                    match = found[rule_id] = Match()
                target = match.excluded_by if exclude else match.keywords
                if keyword not in target:
                    target.append(keyword)
        return found

    def match(self, text: str) -> dict[int, Match]:
        return self.match_folded(fold(text))

    def spans(self, text: str, keywords: list[str]) -> list[tuple[int, int]]:
        """Where `keywords` occur in the original `text` (start, end), for highlighting."""
        folded, origin = fold_with_spans(text)
        wanted = {fold(k) for k in keywords}
        spans = []
        for key in wanted:
            start = folded.find(key)
            while start != -1 and key:
                end = start + len(key) - 1
                spans.append((origin[start], origin[end] + 1))
                start = folded.find(key, start + 1)
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged


def rule_spec(rule: KeywordRule) -> RuleSpec:
    """A rule's RuleSpec (its many-to-many fields prefetched or read here)."""
    covered = None
    employee_ids = {e.pk for e in rule.employees.all()}
    department_ids = [d.pk for d in rule.departments.all()]
    if employee_ids or department_ids:
        from org.models import Employee

        if department_ids:  # members of exactly those departments (scope is exact, rule 3)
            employee_ids |= set(Employee.objects.filter(departments__in=department_ids).values_list("pk", flat=True))
        covered = frozenset(employee_ids)
    return RuleSpec(
        id=rule.pk,
        name=rule.name,
        label=rule.actor_label,
        status=rule.status,
        keywords=list(rule.keywords or ()),
        exclude_keywords=list(rule.exclude_keywords or ()),
        directions=frozenset(rule.directions or ("in",)),
        min_hits=max(rule.min_hits or 1, 1),
        window_days=rule.window_days,
        tags=tuple(sorted(t.pk for t in rule.tags.all())),
        exclude_tags=frozenset(t.pk for t in rule.exclude_tags.all()),
        covered_employees=covered,
        samples=frozenset(c.pk for c in rule.sample_customers.all()),
    )


def _version() -> tuple:
    """The rule set's version: any rule saved, added or deleted changes it (services bump `updated_at`)."""
    row = KeywordRule.objects.order_by().aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    return (row["n"], row["last"], row["top"])


_cache_lock = threading.Lock()
_cache: dict[str, tuple[tuple, Matcher]] = {}


def active_matcher() -> Matcher:
    """The live and testing rules' matcher, rebuilt only when the rule set's version changed."""
    version = _version()
    with _cache_lock:
        cached = _cache.get("active")
        if cached is not None and cached[0] == version:
            return cached[1]
    rules = KeywordRule.objects.filter(status__in=MATCHING_STATUSES).prefetch_related(
        "tags", "exclude_tags", "employees", "departments", "sample_customers"
    )
    matcher = Matcher([rule_spec(r) for r in rules])
    with _cache_lock:
        _cache["active"] = (version, matcher)
    return matcher


def rule_matcher(rule: KeywordRule) -> Matcher:
    """A matcher for one rule, whatever its status (back-tests, the rule page's 试一试)."""
    return Matcher([rule_spec(rule)])
