"""Two sibling sales departments (北京, 上海) under one company, each with a manager and staff, a
taxonomy with an open group and one group scoped to each department, customers spread over the
last weeks (added, ended, tagged, noted, messaged) and the aggregates refreshed.

`from tests.insights.world import world_fixture  # noqa: F401`
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.utils import timezone

from customers.models import FollowRelation, Message, Note, RelationStatus, TagEvent, Tagging
from insights.services import aggregates_refresh
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_tag_group


def local(day: dt.date, hour: int = 11) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def days_ago(n: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=n)


def tag(customer, t, *, source="manual", when=None, action="add"):
    if action == "add":
        Tagging.objects.get_or_create(customer=customer, tag=t)
    TagEvent.objects.create(customer=customer, tag=t, tag_name=t.name, action=action, source=source,
                            created_at=when or timezone.now())


def add_customer(name, followers, *, added: dt.date, state=""):
    customer = CustomerFactory(name=name, followers=followers)
    FollowRelation.objects.filter(customer=customer).update(added_at=local(added), state=state)
    return customer


def end(customer, employee, *, on: dt.date, status=RelationStatus.LOST):
    FollowRelation.objects.filter(customer=customer, employee=employee).update(status=status, ended_at=local(on, 15))


def build_department(w, key: str, dept, staff, scoped_tag, open_tags, n_new: int, offset: int):
    """Customers of one department: `n_new` added over the last days, some tagged, one lost, notes."""
    made = []
    for i in range(n_new):
        c = add_customer(f"{key}客户{i}", [staff], added=days_ago(offset + i))
        made.append(c)
        if i % 2 == 0:
            tag(c, open_tags[i % len(open_tags)], source="bulk", when=local(days_ago(offset + i)))
        if i % 3 == 0:
            tag(c, scoped_tag, source="rule", when=local(days_ago(i + 1)))
        if i % 2 == 1:
            Note.objects.create(customer=c, author=staff, text="回访", created_at=local(days_ago(i)))
        Message.objects.create(msgid=f"{key}-{i}", customer=c, employee=staff, direction="in",
                               content="你好", sent_at=local(days_ago(i)))
    return made


@pytest.fixture(name="world")
def world_fixture(db, settings):
    return build_world(settings)


@pytest.fixture(name="live_world")
def live_world_fixture(transactional_db, settings):
    """The same world, committed: for the live server a browser talks to."""
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)  # an earlier transactional test may have flushed the role groups' permissions
    w = build_world(settings)
    add_channel_and_rule(w)
    w.snapshot = aggregates_refresh()
    return w


def add_channel_and_rule(w) -> None:
    """A 北京 channel code that brought three customers, and a live keyword rule that tagged two
    customers who asked about the price (committed: the rule matches after the ingest commits)."""
    from channels.models import ChannelAdd
    from channels.services import channel_code_create
    from customers.services import customer_upsert, messages_ingest
    from org.actors import Actor
    from rules.services import keyword_rule_create

    admin = Actor(employee=w.admin)
    code = channel_code_create(actor=admin, data={
        "name": "北京展会", "state": "expo_bj", "employees": [w.staff_bj.userid], "department": w.bj.pk,
        "tags": [w.normal.pk]})
    for i in range(3):
        added = local(days_ago(i + 1))
        customer, _ = customer_upsert(actor=Actor(label="test"), data={
            "external_userid": f"expo{i}", "name": f"展会客户{i}",
            "followers": [{"employee": w.staff_bj.userid, "state": code.state, "added_at": added.isoformat()}]})
        ChannelAdd.objects.filter(customer=customer).update(added_at=added, day=added.date())
    keyword_rule_create(actor=admin, data={"name": "价格关注", "keywords": ["价格"], "tags": [w.vip.pk],
                                           "status": "live"})
    messages_ingest(actor=admin, messages=[
        {"msgid": f"price-{c.pk}", "customer": c.pk, "employee": w.staff_bj.userid, "direction": "in",
         "content": "想了解一下价格", "sent_at": timezone.now().isoformat()}
        for c in w.bj_customers[1:3]
    ])


def build_world(settings) -> SimpleNamespace:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    w = SimpleNamespace()
    w.company = DepartmentFactory(name="示例公司")
    w.bj = DepartmentFactory(name="北京销售部", parent=w.company)
    w.sh = DepartmentFactory(name="上海销售部", parent=w.company)

    w.staff_bj = EmployeeFactory(userid="bj_staff", name="北京员工", roles=["staff"], departments=[w.bj])
    w.staff_bj2 = EmployeeFactory(userid="bj_staff2", name="北京员工二", roles=["staff"], departments=[w.bj])
    w.staff_sh = EmployeeFactory(userid="sh_staff", name="上海员工", roles=["staff"], departments=[w.sh])
    w.manager_bj = EmployeeFactory(userid="bj_manager", name="北京经理", roles=["manager"], departments=[w.bj],
                                   managed_departments=[w.bj])
    w.manager_sh = EmployeeFactory(userid="sh_manager", name="上海经理", roles=["manager"], departments=[w.sh],
                                   managed_departments=[w.sh])
    w.tag_admin = EmployeeFactory(userid="tagadmin", name="标签管理员", roles=["tag_admin"])
    w.admin = EmployeeFactory(userid="admin", name="管理员", roles=["enterprise_admin"], is_superuser=True)

    w.level, (w.vip, w.normal, w.dormant) = make_tag_group("客户等级", tags=["VIP客户", "普通客户", "沉睡客户"])
    w.bj_group, (w.bj_tag,) = make_tag_group("北京专属", departments=[w.bj], tags=["京A活动"])
    w.sh_group, (w.sh_tag,) = make_tag_group("上海专属", departments=[w.sh], tags=["沪A活动"])

    w.bj_customers = build_department(w, "京", w.bj, w.staff_bj, w.bj_tag, [w.vip, w.normal], 6, 1)
    w.sh_customers = build_department(w, "沪", w.sh, w.staff_sh, w.sh_tag, [w.normal, w.vip], 5, 2)
    # followed in both cities: each manager sees it, neither sees the other city's tag on it
    w.shared = add_customer("两地客户", [w.staff_bj2, w.staff_sh], added=days_ago(3))
    tag(w.shared, w.sh_tag, source="api", when=local(days_ago(2)))
    tag(w.shared, w.vip, source="manual", when=local(days_ago(2)))
    # lost: one 北京 customer left 北京员工 but is still followed by 北京员工二; one 上海 customer left
    w.lost_bj = add_customer("北京流失客户", [w.staff_bj, w.staff_bj2], added=days_ago(20))
    end(w.lost_bj, w.staff_bj, on=days_ago(2))
    end(w.sh_customers[0], w.staff_sh, on=days_ago(1), status=RelationStatus.DELETED)
    # 沉睡客户: put on a 北京 customer 100 days ago, unused since (a clean-up candidate still carried)
    tag(w.bj_customers[1], w.dormant, source="import", when=local(days_ago(100)))
    # an untagged customer nobody follows any more (only enterprise-level viewers see it)
    w.orphan = add_customer("无人跟进客户", [], added=days_ago(40))
    w.snapshot = aggregates_refresh()
    return w
