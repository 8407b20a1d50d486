"""The admin pages of channel codes: who gets the menu and the pages, the form's errors (the field
named, nothing saved), the code's page (warnings, preview, downloads, stats CSV)."""

from __future__ import annotations

import pytest

from channels.models import ChannelCode
from tests.channels.conftest import add_through, make_code
from tests.conftest import login

pytestmark = pytest.mark.django_db


def form_data(w, **overrides):
    data = {"name": "车展", "state": "expo", "employees": [str(w.staff.pk)], "rotation": "round_robin",
            "department": str(w.sales.pk), "enabled": "on", "skip_verify": "on",
            f"tags-group_{w.level.pk}": [str(w.vip.pk)], f"tags-group_{w.key_group.pk}": [str(w.key_account.pk)],
            f"tags-group_{w.stage.pk}": str(w.hot.pk), "hours_0": "09:00-12:00, 13:00-18:00"}
    data.update(overrides)
    return data


def test_menu_and_pages_by_role(world):
    w = world
    code = make_code(name="我的码", employees=[w.staff], department=w.sales.pk)
    for employee in (w.admin, w.tag_admin, w.manager, w.staff):
        client = login(employee)
        assert "渠道活码" in client.get("/").content.decode(), employee.userid
        assert client.get("/channels/channelcode/").status_code == 200
        assert client.get(f"/channels/channelcode/{code.pk}/change/").status_code == 200
    staff = login(w.staff)
    assert staff.get("/channels/channelcode/add/").status_code == 403
    assert staff.get(f"/channels/channelcode/{code.pk}/change/?edit=1").status_code == 403
    page = staff.get(f"/channels/channelcode/{code.pk}/change/").content.decode()
    assert 'id="tp-edit"' not in page
    hr = login(w.hr)
    assert "渠道活码" not in hr.get("/").content.decode()
    assert hr.get("/channels/channelcode/").status_code == 403
    other = login(w.after_staff)
    assert other.get(f"/channels/channelcode/{code.pk}/change/").status_code == 404


def test_manager_creates_a_code_through_the_form(world):
    w = world
    client = login(w.manager)
    r = client.post("/channels/channelcode/add/", form_data(w))
    assert r.status_code == 302, r.content.decode()[:2000]
    code = ChannelCode.objects.get(state="expo")
    assert set(code.tags.values_list("pk", flat=True)) == {w.vip.pk, w.key_account.pk, w.hot.pk}
    assert code.working_hours == {"0": [["09:00", "12:00"], ["13:00", "18:00"]]}
    assert list(code.employees.all()) == [w.staff] and code.owner == w.manager


@pytest.mark.parametrize(("overrides", "message"), [
    ({"state": "a" * 31}, "state"),
    ({"state": "taken"}, "已被其他渠道活码使用"),
    ({"employees": []}, "id_employees_error"),
    ({"employees": [999999]}, "id_employees_error"),
    ({"hours_2": "全天"}, "09:00-18:00"),
    ({"hours_2": "18:00-09:00"}, "开始早于结束"),
    ({"hours_2": "09:00-18:00, 25:00-26:00"}, "“25:00-26:00”不是有效的时间段"),
])
def test_form_errors_name_the_field_and_save_nothing(world, overrides, message):
    w = world
    make_code(name="占用", state="taken", employees=[w.staff])
    before = list(ChannelCode.objects.values_list("pk", "name", "state"))
    r = login(w.admin).post("/channels/channelcode/add/", form_data(w, **overrides))
    assert r.status_code == 200
    assert message in r.content.decode()
    assert "HH:MM" not in r.content.decode()  # the API's wording is not the form's
    assert list(ChannelCode.objects.values_list("pk", "name", "state")) == before


def test_the_form_offers_only_tags_the_manager_sees_and_a_crafted_one_is_not_saved(world):
    w = world
    client = login(w.manager)
    assert "保养到期" not in client.get("/channels/channelcode/add/").content.decode()
    data = form_data(w, **{f"tags-group_{w.service.pk}": [str(w.maintenance.pk)]})
    assert client.post("/channels/channelcode/add/", data).status_code == 302
    assert not ChannelCode.objects.get(state="expo").tags.filter(pk=w.maintenance.pk).exists()


def test_the_form_offers_locked_groups_with_the_codes_own_hint(world):
    """A code tags automatically, so a manager may preset a locked group's tags: the picker (the
    portrait's rows) leaves them enabled and says why, instead of the portrait's "you cannot" hint."""
    w = world
    page = login(w.manager).get("/channels/channelcode/add/").content.decode()
    assert "锁定组：渠道活码是自动打标签，可以使用" in page and "锁定组：你不能打或移除这些标签" not in page
    box = page[page.index(f'name="tags-group_{w.key_group.pk}"'):]
    assert "disabled" not in box[:box.index(">")]


def test_code_page_shows_warnings_preview_downloads_and_csv(world):
    w = world
    code = make_code(name="车展", state="expo", employees=[w.staff], daily_limit=1, tags=[w.vip],
                     remark_template="{channel}-{name}", welcome_message="欢迎光临车展")
    add_through("expo", w.staff, "wm1", added_at=None)
    client = login(w.admin)
    html = client.get(f"/channels/channelcode/{code.pk}/change/").content.decode()
    assert "现在没有人能接待新客户" in html and "上限" in html
    assert "VIP客户" in html and "欢迎光临车展" in html and "车展-王先生" in html
    assert "?state=expo" in html and "qr.png?size=50" in html and "tp-days-chart" in html
    png = client.get(f"/channels/channelcode/{code.pk}/qr.png?size=15&download=1")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    csv_text = client.get(f"/channels/channelcode/{code.pk}/stats.csv").content.decode("utf-8-sig")
    assert csv_text.startswith("日期,新增,流失,仍在跟进") and ",1,0,1" in csv_text


def test_delete_through_the_admin(world):
    w = world
    code = make_code(name="车展", state="expo", employees=[w.staff])
    r = login(w.admin).post(f"/channels/channelcode/{code.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and not ChannelCode.objects.exists()


def test_code_page_and_list_in_english_have_no_chinese_punctuation(world):
    """English UI: labels and separators in English punctuation (data such as names stays as it is)."""
    w = world
    code = make_code(name="Expo", state="expo", employees=[w.staff, w.manager], remark_template="{channel}-{name}")
    client = login(w.admin)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get(f"/channels/channelcode/{code.pk}/change/").content.decode()
    listing = client.get("/channels/channelcode/").content.decode()
    assert "Landing page: " in page and "Remark: " in page
    for html in (page, listing):
        for mark in ("：", "、", "（", "）"):
            assert mark not in html, mark


def test_the_state_is_called_by_its_name_not_the_wecom_parameter(world):
    """"渠道标识" on the form and the code's page, as on the customer list's filter; WeCom's name
    for it, state, only in the help text (not a bare "state" label on a Chinese page)."""
    import re

    w = world
    code = make_code(name="车展", state="expo", employees=[w.staff])
    client = login(w.admin)
    form = client.get("/channels/channelcode/add/").content.decode()
    page = client.get(f"/channels/channelcode/{code.pk}/change/").content.decode()
    assert re.search(r'<label[^>]*for="id_state"[^>]*>渠道标识', form) and "渠道 state" not in form
    assert "<th>渠道标识</th>" in page and "<th>state</th>" not in page
