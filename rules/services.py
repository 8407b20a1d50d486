"""Writes of the rules app: keyword rules (create, update, delete), back-tests, undo, and turning a
back-test into a bulk tagging job. Matching itself is in `rules.matching` (run by the worker).

Who may: tag admins, enterprise admins and enterprise-level API clients with write scope
(`actor.manages_taxonomy`); anybody else is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.jobs import bulk_tagging_start, job_create
from customers.models import Customer, Job, JobKind, TagSource
from org.actors import Actor
from org.models import Department, Employee
from tagportal.errors import Conflict, NotAllowed, ValidationFailed
from tags.models import Tag

from .matcher import fold
from .models import Backtest, BacktestCustomer, KeywordRule, RuleStatus

MAX_KEYWORD_LENGTH = 50
MAX_KEYWORDS = 1000
MAX_SAMPLES = 20
MAX_NAME = 100
DIRECTIONS = ("in", "out")
RULE_FIELDS = ("name", "keywords", "exclude_keywords", "tags", "exclude_tags", "directions", "min_hits",
               "window_days", "status", "sample_customers", "employees", "departments")


def check_rule_reader(actor: Actor) -> None:
    if not actor.manages_taxonomy:
        raise NotAllowed(_("只有标签管理员和企业管理员可以管理智能标签。"))


def check_rule_manager(actor: Actor) -> None:
    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能写入。"), code="read_only")
    if not actor.manages_taxonomy:
        raise NotAllowed(_("只有标签管理员和企业管理员可以管理智能标签。"))


def clean_keywords(value: Any, key: str, errors: dict, *, required: bool) -> list[str]:
    """Trimmed keywords, 1–50 chars each, deduplicated as the matcher folds them."""
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[key] = _("必须是字符串列表。")
        return []
    cleaned: dict[str, str] = {}
    for raw in value:
        word = raw.strip()
        if not word or "\x00" in word:
            errors[key] = _("关键词不能为空。")
            return []
        if len(word) > MAX_KEYWORD_LENGTH:
            errors[key] = _("关键词最长 %(n)d 个字符：%(w)s…") % {"n": MAX_KEYWORD_LENGTH, "w": word[:20]}
            return []
        cleaned.setdefault(fold(word), word)  # "ＶＩＰ" and "vip" are one keyword
    if len(cleaned) > MAX_KEYWORDS:
        errors[key] = _("最多 %(n)d 个关键词。") % {"n": MAX_KEYWORDS}
        return []
    if required and not cleaned:
        errors[key] = _("至少需要一个关键词。")
    return list(cleaned.values())


def _ids(value: Any, key: str, errors: dict) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 for v in value
    ):
        errors[key] = _("必须是 id 列表。")
        return []
    return list(dict.fromkeys(value))


def _int(value: Any, key: str, errors: dict, *, low: int, high: int, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[key] = _("必须是 %(low)d 到 %(high)d 之间的整数。") % {"low": low, "high": high}
        return None
    return value


def _clean(data: Any, *, partial: bool) -> dict:
    """Validate a rule's fields (all of them, or those given when `partial`); ValidationFailed names
    each bad field. Returns the cleaned values, with tags, customers, employees as objects."""
    if not isinstance(data, dict):
        raise ValidationFailed(_("请求体必须是对象。"), details={"body": "expected an object"})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    unknown = sorted(set(data) - set(RULE_FIELDS) - {"employee", "id", "hit_count", "tagged_count"})
    if unknown:
        errors.update({k: _("未知字段。") for k in unknown})

    def given(key: str) -> bool:
        return key in data or not partial

    if given("name"):
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME or "\x00" in name:
            errors["name"] = _("名称必须是 1–%(n)d 个字符。") % {"n": MAX_NAME}
        else:
            out["name"] = name.strip()
    if given("keywords"):
        out["keywords"] = clean_keywords(data.get("keywords"), "keywords", errors, required=True)
    if given("exclude_keywords"):
        out["exclude_keywords"] = clean_keywords(data.get("exclude_keywords"), "exclude_keywords", errors,
                                                 required=False)
    if given("directions"):
        directions = data.get("directions", ["in"])
        if directions is None:
            directions = ["in"]
        if (not isinstance(directions, list) or not directions
                or not all(isinstance(d, str) and d in DIRECTIONS for d in directions)):
            errors["directions"] = _("directions 只能是 in、out 的非空列表。")
        else:
            out["directions"] = [d for d in DIRECTIONS if d in directions]
    if given("min_hits"):
        out["min_hits"] = _int(data.get("min_hits", 1), "min_hits", errors, low=1, high=1000, nullable=False)
    if given("window_days"):
        out["window_days"] = _int(data.get("window_days"), "window_days", errors, low=1, high=3650, nullable=True)
    if given("status"):
        status = data.get("status", RuleStatus.DRAFT)
        if status not in RuleStatus.values:
            errors["status"] = _("状态只能是 %(s)s。") % {"s": ", ".join(RuleStatus.values)}
        else:
            out["status"] = status
    for key in ("tags", "exclude_tags"):
        if given(key):
            ids = _ids(data.get(key), key, errors)
            found = {t.pk: t for t in Tag.objects.filter(pk__in=ids).select_related("group")}
            missing = [i for i in ids if i not in found]
            if missing:
                errors[key] = _("未知标签：%(ids)s") % {"ids": ", ".join(map(str, missing))}
            elif key == "tags" and not ids:
                errors[key] = _("至少选择一个要添加的标签。")
            else:
                out[key] = [found[i] for i in ids]
    if "tags" in out:
        groups: dict[int, list[int]] = {}
        for tag in out["tags"]:
            if tag.group.single_choice:
                groups.setdefault(tag.group_id, []).append(tag.pk)
        clash = [ids for ids in groups.values() if len(ids) > 1]
        if clash:
            errors["tags"] = _("单选标签组一次只能打一个标签：%(ids)s") % {"ids": ", ".join(map(str, clash[0]))}
    if given("sample_customers"):
        ids = _ids(data.get("sample_customers"), "sample_customers", errors)
        if len(ids) > MAX_SAMPLES:
            errors["sample_customers"] = _("样本客户最多 %(n)d 位。") % {"n": MAX_SAMPLES}
        elif "sample_customers" not in errors:
            found = set(Customer.objects.filter(pk__in=ids).values_list("pk", flat=True))
            missing = [i for i in ids if i not in found]
            if missing:
                errors["sample_customers"] = _("未知客户：%(ids)s") % {"ids": ", ".join(map(str, missing))}
            else:
                out["sample_customers"] = ids
    if given("employees"):
        userids = data.get("employees") or []
        if not isinstance(userids, list) or not all(isinstance(u, str) for u in userids):
            errors["employees"] = _("必须是成员 userid 列表。")
        else:
            found = dict(Employee.objects.filter(userid__in=userids).values_list("userid", "pk"))
            missing = [u for u in userids if u not in found]
            if missing:
                errors["employees"] = _("未知成员：%(u)s") % {"u": ", ".join(missing)}
            else:
                out["employees"] = [found[u] for u in dict.fromkeys(userids)]
    if given("departments"):
        ids = _ids(data.get("departments"), "departments", errors)
        found = set(Department.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            errors["departments"] = _("未知部门：%(ids)s") % {"ids": ", ".join(map(str, missing))}
        elif "departments" not in errors:
            out["departments"] = ids
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first]}", details=errors)
    return out


_M2M = ("tags", "exclude_tags", "sample_customers", "employees", "departments")


def _save(rule: KeywordRule, values: dict) -> KeywordRule:
    for key, value in values.items():
        if key not in _M2M:
            setattr(rule, key, value)
    rule.updated_at = timezone.now()  # a new rule-set version: workers rebuild their automaton
    rule.save()
    for key in _M2M:
        if key in values:
            getattr(rule, key).set(values[key])
    return rule


@transaction.atomic
def keyword_rule_create(*, actor: Actor, data: Any) -> KeywordRule:
    """新建智能标签. Fields as API.md `keyword-rules/`; ValidationFailed names bad fields."""
    check_rule_manager(actor)
    values = _clean(data, partial=False)
    return _save(KeywordRule(created_by=actor.employee), values)


@transaction.atomic
def keyword_rule_update(*, actor: Actor, rule: KeywordRule, data: Any) -> KeywordRule:
    """修改智能标签: only the fields given change."""
    check_rule_manager(actor)
    values = _clean(data, partial=True)
    rule = KeywordRule.objects.select_for_update().get(pk=rule.pk)
    return _save(rule, values)


@transaction.atomic
def keyword_rule_delete(*, actor: Actor, rule: KeywordRule) -> None:
    """删除智能标签 with its hit log. Tags it added stay (undo them first if they should go);
    the rule-set version changes with the count."""
    check_rule_manager(actor)
    KeywordRule.objects.filter(pk=rule.pk).delete()
    # Any remaining rule's `updated_at` is untouched; the count in the version changed.


def _date(value: Any, key: str, errors: dict) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        pass
    errors[key] = _("日期格式应为 YYYY-MM-DD。")
    return None


@transaction.atomic
def rule_backtest_start(*, actor: Actor, rule: KeywordRule, since: Any, until: Any) -> Job:
    """回测: a RULE_BACKTEST job over the stored messages sent between `since` and `until` (dates,
    Asia/Shanghai, inclusive). It changes nothing; its result is on the job."""
    check_rule_manager(actor)
    errors: dict[str, str] = {}
    since_date, until_date = _date(since, "since", errors), _date(until, "until", errors)
    today = timezone.localdate()
    since_date = since_date or (today - dt.timedelta(days=30))
    until_date = until_date or today
    if not errors and since_date > until_date:
        errors["until"] = _("结束日期不能早于开始日期。")
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"{first}: {errors[first]}", details=errors)
    job = job_create(kind=JobKind.RULE_BACKTEST, actor=actor,
                     params={"rule": rule.pk, "rule_name": rule.name, "since": since_date.isoformat(),
                             "until": until_date.isoformat()})
    Backtest.objects.create(job=job, rule=rule, since=since_date, until=until_date)
    return job


@transaction.atomic
def rule_undo_start(*, actor: Actor, rule: KeywordRule, since: Any = None) -> Job:
    """撤销: a RULE_UNDO job removing every tag this rule added (since a date), sparing tags others
    added or re-added after it (see `rules.jobs.RuleUndoJob`)."""
    check_rule_manager(actor)
    errors: dict[str, str] = {}
    since_date = _date(since, "since", errors)
    if errors:
        raise ValidationFailed(f"since: {errors['since']}", details=errors)
    return job_create(kind=JobKind.RULE_UNDO, actor=actor,
                      params={"rule": rule.pk, "rule_name": rule.name,
                              "since": since_date.isoformat() if since_date else None})


@transaction.atomic
def rule_backtest_apply(*, actor: Actor, job: Job) -> Job:
    """按回测结果打标签: a bulk tagging job (undoable like any) adding the rule's tags to the customers
    a finished back-test found."""
    check_rule_manager(actor)
    backtest = Backtest.objects.select_related("rule", "job").filter(job=job).first()
    if backtest is None:
        raise ValidationFailed(_("这不是智能标签回测任务。"), details={"job": job.pk})
    if backtest.job.status != "succeeded":
        raise Conflict(_("回测尚未完成。"), details={"status": backtest.job.status}, code="not_finished")
    customer_ids = list(BacktestCustomer.objects.filter(backtest=backtest).order_by("customer_id")
                        .values_list("customer_id", flat=True))
    if not customer_ids:
        raise ValidationFailed(_("回测没有找到要打标签的客户。"), details={"customers": 0})
    tag_ids = list(backtest.rule.tags.values_list("pk", flat=True))
    return bulk_tagging_start(actor=actor, add=tag_ids, source=TagSource.BULK, customer_ids=customer_ids)
