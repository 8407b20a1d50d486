"""The scope picker and the greyed locked tags, in a real browser."""

from __future__ import annotations

import pytest

from tags.models import TagGroup
from tests.conftest import browser_login
from tests.factories import make_tag_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def box(page, dept):
    return page.locator(f'input[name="departments"][value="{dept.pk}"]')


def test_scope_picker_adds_sub_departments_and_staff_see_locked_tags_greyed(page, company, tag_admin):
    make_tag_group("客户等级", tags=["VIP客户"])
    make_tag_group("售后服务", departments=[company.after_sales], tags=["保养到期"])

    browser_login(page, tag_admin.userid)
    page.goto("/tags/taggroup/add/")
    page.fill("#id_name", "华北客户画像")
    page.check("#id_include_sub_departments")
    box(page, company.north).check()
    # The picker ticks every department below 华北区 at once, and nothing beside it.
    for dept in (company.beijing, company.after_sales, company.sales):
        assert box(page, dept).is_checked(), dept.name
    assert not box(page, company.east).is_checked()
    assert not box(page, company.hq).is_checked()
    # Unticking one sub-department by hand is respected (the page shows what will be saved).
    box(page, company.sales).uncheck()
    page.check("#id_locked")
    page.fill("#id_tags-0-name", "政企客户")
    page.click("input[name=_save]")
    page.wait_for_url("**/tags/taggroup/")
    group = TagGroup.objects.get(name="华北客户画像")
    assert group.locked
    # Server side adds sub-departments of every ticked one: 销售部 is under 北京分公司, ticked, so it is back.
    assert set(group.departments.all()) == {company.north, company.beijing, company.after_sales, company.sales}
    assert list(group.tags.values_list("name", flat=True)) == ["政企客户"]

    # A manager in 华北区 sees the locked group's tags greyed, and not the 售后部-only group.
    page.context.clear_cookies()
    browser_login(page, company.manager.userid)
    page.goto("/tags/taggroup/")
    locked_tag = page.locator("span.tp-tag", has_text="政企客户")
    assert "tp-tag-locked" in locked_tag.get_attribute("class")
    assert locked_tag.evaluate("e => getComputedStyle(e).color") == "rgb(158, 158, 158)"
    open_tag = page.locator("span.tp-tag", has_text="VIP客户")
    assert "tp-tag-locked" not in open_tag.get_attribute("class")
    assert page.locator("text=售后服务").count() == 0
    assert page.locator(".object-tools a.addlink").count() == 0  # read-only for managers
