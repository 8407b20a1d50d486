"""Every page of the portal, walked as each kind of user in both languages: no Chinese text (an
untranslated msgid) and no full-width punctuation in the English UI; no half-width punctuation
glued to Chinese text and none of Django's leftovers in the Chinese UI. The data the walk runs on is
ASCII, so any Chinese on an English page is the portal's own text. The scan itself is proved to fail
on a mistake planted in a real page."""

from __future__ import annotations

import pytest

from customers.models import FollowRelation, Message, Tagging, TagSource
from org.actors import Actor
from org.models import EmployeeStatus
from tests.daily import i18n_scan
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_api_client, make_tag_group

ROLES = ("admin", "hr", "tagadmin", "manager", "staff")


@pytest.fixture
def ascii_world(db):
    """A small company whose every name is ASCII, with at least one object behind each page."""
    from django.apps import apps

    from customers.jobs import bulk_tagging_start
    from customers.services import note_create
    from customers.transfers import transfer_start
    from org.roles import sync_role_permissions
    from tags.models import PersonalTag

    sync_role_permissions(apps)
    hq = DepartmentFactory(name="HQ", external_id="1")
    sales = DepartmentFactory(name="Sales", parent=hq, external_id="2")
    people = {
        "admin": EmployeeFactory(userid="admin", name="Ada", roles=["enterprise_admin"], departments=[hq]),
        "hr": EmployeeFactory(userid="hr", name="Hanna", roles=["hr"], departments=[hq]),
        "tagadmin": EmployeeFactory(userid="tagadmin", name="Tom", roles=["tag_admin"], departments=[hq]),
        "manager": EmployeeFactory(userid="manager", name="Mia", roles=["manager"], departments=[sales],
                                   managed_departments=[sales]),
        "staff": EmployeeFactory(userid="staff", name="Sam", departments=[sales]),
    }
    leaver = EmployeeFactory(userid="leaver", name="Leo", departments=[sales])
    heir = EmployeeFactory(userid="heir", name="Hal", departments=[sales])
    level, (vip, normal) = make_tag_group("Level", single_choice=True, tags=["VIP", "Normal"])
    make_tag_group("Region", parent=level, tags=["North"])
    _locked, (won,) = make_tag_group("Deal", locked=True, tags=["Won"])
    PersonalTag.objects.create(owner=people["staff"], name="call back")
    customers = [CustomerFactory(name=f"Customer {i}", followers=[people["staff"], leaver]) for i in range(4)]
    FollowRelation.objects.filter(customer=customers[0]).update(remark="Mr Smith", state="fair2026")
    Tagging.objects.create(customer=customers[0], tag=vip)
    Tagging.objects.create(customer=customers[1], tag=won)
    note_create(actor=Actor(employee=people["staff"]), customer=customers[0], text="Called, wants a quote")
    Message.objects.create(msgid="m1", customer=customers[0], employee=people["staff"], direction="in",
                           content="Hello")
    job = bulk_tagging_start(actor=Actor(employee=people["manager"]), add=[normal.pk], source=TagSource.BULK,
                             customer_ids=[customers[2].pk])
    transfer_start(actor=Actor(employee=people["hr"]), from_employee=leaver, to_employees=[heir],
                   keep_portrait=True, mark_departed=True)
    EmployeeFactory(userid="gone", name="Gil", departments=[sales], status=EmployeeStatus.DEPARTED)
    make_api_client("crm")
    return {"people": people, "customers": customers, "job": job}


def _extra(world):
    customer = world["customers"][0]
    return ("/m/", f"/m/customers/{customer.external_userid}/")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("role", ROLES)
def test_every_page_speaks_one_language(ascii_world, role, language):
    result = i18n_scan.walk(ascii_world["people"][role], language, extra_start=_extra(ascii_world))
    assert not result.errors, result.errors
    assert len(result.pages) > (20 if role in ("admin", "tagadmin") else 5), sorted(result.pages)
    assert not result.findings, f"{len(result.findings)} problems:\n" + i18n_scan.report(result.findings)


def test_the_scan_fails_on_a_planted_mistake(ascii_world, monkeypatch):
    """Plant an untranslated msgid and full-width punctuation in the English front page, and ASCII
    punctuation after Chinese text in the Chinese one: the walk must report each."""
    from tagportal import admin as portal_admin

    planted = portal_admin.PortalSection(
        "planted", "这一段没有翻译", "Planted，with full-width punctuation", ("enterprise_admin",),
        (portal_admin.PortalLink("已保存.", "admin:index", permission=""),),
    )
    monkeypatch.setattr(portal_admin, "SECTIONS", (*portal_admin.SECTIONS, planted))
    admin_user = ascii_world["people"]["admin"]

    english = i18n_scan.walk(admin_user, "en", max_pages=1)
    texts = {(f.problem, f.text) for f in english.findings}
    assert ("Chinese text in the English UI (untranslated msgid)", "这一段没有翻译") in texts
    assert ("full-width punctuation in the English UI", "Planted，with full-width punctuation") in texts

    chinese = i18n_scan.walk(admin_user, "zh-hans", max_pages=1)
    assert [(f.problem, f.text) for f in chinese.findings] == [("half-width punctuation after Chinese text", "已保存.")]
