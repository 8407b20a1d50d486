"""Shared set-up of the sync tests: a corp in the stand-in and the same people in the portal."""

from __future__ import annotations

from customers.models import Customer, FollowRelation
from org.actors import Actor
from tags import services as tag_services
from tests.factories import EmployeeFactory

ADMIN = Actor(label="测试")


def employee(sim, userid: str, **kwargs):
    """An employee in the portal and the same user in the stand-in."""
    sim.state.add_user(userid, name=userid)
    return EmployeeFactory(userid=userid, name=userid, **kwargs)


def customer(sim, external_userid: str, *followers):
    """A customer followed by `followers` in the portal and in WeCom (the stand-in)."""
    obj = Customer.objects.create(external_userid=external_userid, name=external_userid)
    for e in followers:
        FollowRelation.objects.create(customer=obj, employee=e)
        sim.state.add_contact(userid=e.userid, external_userid=external_userid, name=external_userid,
                              welcome_code=False)
    return obj


def taxonomy():
    """客户画像 › 行业 › 制造业 (three levels) with tags, and 客户等级 with VIP and 普通 — made in the portal."""
    root = tag_services.tag_group_create(actor=ADMIN, name="客户画像")
    industry = tag_services.tag_group_create(actor=ADMIN, name="行业", parent=root)
    making = tag_services.tag_group_create(actor=ADMIN, name="制造业", parent=industry)
    t1 = tag_services.tag_create(actor=ADMIN, group=making, name="汽车零部件")
    t2 = tag_services.tag_create(actor=ADMIN, group=making, name="电子")
    level = tag_services.tag_group_create(actor=ADMIN, name="客户等级")
    vip = tag_services.tag_create(actor=ADMIN, group=level, name="VIP")
    normal = tag_services.tag_create(actor=ADMIN, group=level, name="普通")
    return {"root": root, "industry": industry, "making": making, "level": level,
            "parts": t1, "electronics": t2, "vip": vip, "normal": normal}


def wecom_tags(sim, external_userid: str, userid: str) -> set[str]:
    contact = sim.state.contacts[external_userid]
    follower = contact.follower(userid)
    return {m["tag_id"] for m in follower.tags}


def push():
    from wecom.sync_tasks import push_outbox

    return push_outbox.apply().get()
