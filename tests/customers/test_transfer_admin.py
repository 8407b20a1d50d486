"""HR's hand-over in the Chinese admin: employee page → form → preview → confirm → result page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from customers.models import FollowRelation, RelationStatus, Transfer
from org.models import EmployeeStatus
from tags.models import PersonalTag
from tests.conftest import browser_login
from tests.customers.test_transfer import personal_names, portrait, relation
from tests.factories import CustomerFactory, EmployeeFactory


@pytest.fixture
def scene(db):
    hr = EmployeeFactory(userid="hr", name="人事小王", roles=["hr"])
    zhang = EmployeeFactory(userid="zhangsan", name="张三")
    li = EmployeeFactory(userid="lisi", name="李四")
    wang = EmployeeFactory(userid="wangwu", name="王五")
    customers = [portrait(zhang, CustomerFactory(name=f"保险客户{i}")) for i in range(3)]
    PersonalTag.objects.create(owner=li, name="高意向")
    return {"hr": hr, "zhang": zhang, "li": li, "wang": wang, "customers": customers}


def start_url(employee, mode="departed"):
    return reverse("admin:customers_transfer_start", args=[employee.pk, mode])


@pytest.mark.django_db
def test_hr_hands_over_in_the_admin(client, scene, django_capture_on_commit_callbacks):
    zhang, li = scene["zhang"], scene["li"]
    client.force_login(scene["hr"])
    page = client.get(reverse("admin:org_employee_change", args=[zhang.pk])).content.decode()
    assert "离职继承" in page and "在职继承" in page

    form = client.get(reverse("admin:customers_transfer_departed", args=[zhang.pk]), follow=True)
    assert "张三 (zhangsan) 正在跟进 3 位客户" in form.content.decode()
    data = {"to_employees": [li.pk], "keep_portrait": "on", "step": "preview_first"}
    preview = client.post(start_url(zhang), data).content.decode()
    assert "将把 张三 (zhangsan) 的 <b>3</b> 位客户转给以下继承人" in preview
    # personal tags are their owner's alone (rule 9): counts only, never names
    assert "高意向" not in preview and "喜欢周末沟通" not in preview
    assert not Transfer.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(start_url(zhang), {**data, "step": "confirm"})
    transfer = Transfer.objects.get()
    assert done.status_code == 302 and done.url == reverse("admin:customers_transfer_change", args=[transfer.pk])
    result = client.get(done.url).content.decode()
    for customer in scene["customers"]:
        assert customer.name in result
        assert relation(customer, li).status == RelationStatus.ACTIVE
        assert personal_names(li, customer) == {"高意向", "喜欢周末沟通"}
    assert result.count("已转接") >= 3 and "个人标签 +2" in result
    zhang.refresh_from_db()
    assert zhang.status == EmployeeStatus.DEPARTED

    listing = client.get(reverse("admin:customers_transfer_changelist")).content.decode()
    assert "张三" in listing and "李四" in listing and "已转接 3" in listing


@pytest.mark.django_db
def test_customers_chosen_one_by_one_in_the_preview(client, scene, django_capture_on_commit_callbacks):
    zhang, li, wang = scene["zhang"], scene["li"], scene["wang"]
    a, b, c = scene["customers"]
    client.force_login(scene["hr"])
    base = {"to_employees": [li.pk, wang.pk], "keep_portrait": "on", "choose_customers": "on"}
    preview = client.post(start_url(zhang, "onjob"), {**base, "step": "preview_first"}).content.decode()
    assert f'name="to_{a.pk}"' in preview
    choice = {f"pick_{a.pk}": "on", f"to_{a.pk}": str(wang.pk), f"pick_{b.pk}": "on", f"to_{b.pk}": ""}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(start_url(zhang, "onjob"), {**base, **choice, "step": "confirm"})
    assert response.status_code == 302
    transfer = Transfer.objects.get()
    assert dict(transfer.items.values_list("customer_id", "to_employee_id")) == {a.pk: wang.pk, b.pk: li.pk}
    assert relation(c, zhang).status == RelationStatus.ACTIVE
    zhang.refresh_from_db()
    assert zhang.status == EmployeeStatus.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["no_inheritor", "departed_inheritor", "self"])
def test_bad_input_shows_form_errors_and_moves_nothing(client, scene, case):
    zhang = scene["zhang"]
    client.force_login(scene["hr"])
    if case == "no_inheritor":
        data, message = {}, "请至少选择一位继承人"
    elif case == "departed_inheritor":
        gone = scene["wang"]
        gone.status = EmployeeStatus.DEPARTED
        gone.save()
        data, message = {"to_employees": [gone.pk]}, "选择一个有效的选项"
    else:
        data, message = {"to_employees": [zhang.pk]}, "选择一个有效的选项"
    for step in ("preview_first", "confirm"):
        response = client.post(start_url(zhang), {**data, "keep_portrait": "on", "step": step})
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not Transfer.objects.exists()
    assert not FollowRelation.objects.filter(status=RelationStatus.TRANSFERRED).exists()


@pytest.mark.django_db
def test_second_start_while_running_is_a_form_error(client, scene):
    zhang, li = scene["zhang"], scene["li"]
    client.force_login(scene["hr"])
    data = {"to_employees": [li.pk], "keep_portrait": "on", "step": "confirm"}
    started = client.post(start_url(zhang, "onjob"), data)  # job queued, not run
    assert started.status_code == 302
    transfer = Transfer.objects.get()
    live = client.get(started.url).content.decode()  # while it runs: a live progress bar fed by the job API
    assert 'id="tp-progress-bar"' in live and f"/api/v1/jobs/{transfer.job_id}/" in live
    again = client.post(start_url(zhang, "onjob"), data)
    assert again.status_code == 200 and "正在进行中" in again.content.decode()
    assert Transfer.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("roles", [["staff"], ["manager"], ["tag_admin"]])
def test_only_hr_and_admins_get_the_tool(client, scene, roles):
    someone = EmployeeFactory(roles=roles)
    someone.is_staff = True
    someone.save()
    client.force_login(someone)
    assert client.get(start_url(scene["zhang"])).status_code == 403
    data = {"to_employees": [scene["li"].pk], "keep_portrait": "on", "step": "confirm"}
    assert client.post(start_url(scene["zhang"]), data).status_code == 403
    assert client.get(reverse("admin:customers_transfer_changelist")).status_code == 403
    assert not Transfer.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_hr_hands_over_a_departed_salesperson(page, scene):
    """The whole hand-over in Chinese, clicking: employee page → 离职继承 → preview → confirm → result."""
    zhang, li = scene["zhang"], scene["li"]
    browser_login(page, "hr")
    page.goto(reverse("admin:org_employee_change", args=[zhang.pk]))
    page.click("text=离职继承")
    page.wait_for_selector("text=正在跟进 3 位客户")
    page.fill("#tp-inheritor-filter", "李四")
    assert not page.is_visible(f"#id_to_employees label:has-text('{scene['wang']}')")  # filtered out
    page.check(f"#id_to_employees label:has-text('{li}') input")
    assert page.is_checked("input[name=keep_portrait]")
    page.click("text=下一步：预览")
    page.wait_for_selector("#tp-preview-table")
    row = page.inner_text("#tp-preview-table tbody tr")
    # counts only: 6 personal taggings, 2 distinct personal tags, 1 merging by name; never their names (rule 9)
    assert "李四" in row and "高意向" not in row and row.split("\t")[4:7] == ["6", "2", "1"]
    page.click("#tp-confirm")
    page.wait_for_selector("#tp-items")
    page.wait_for_function("document.querySelector('#tp-status').dataset.status === 'succeeded'", timeout=30_000)
    items = page.inner_text("#tp-items")
    assert all(c.name in items for c in scene["customers"]) and items.count("已转接") == 3
    assert re.search(r"个人标签 \+2", items)
    for customer in scene["customers"]:
        assert relation(customer, li).status == RelationStatus.ACTIVE
    # the departed salesperson can no longer log in
    page.context.clear_cookies()
    browser_login(page, "zhangsan")
    assert "/login/" in page.url


@pytest.mark.django_db
def test_departed_employee_gets_only_the_departed_hand_over(client, scene):
    zhang = scene["zhang"]
    zhang.status = EmployeeStatus.DEPARTED
    zhang.save()
    client.force_login(scene["hr"])
    page = client.get(reverse("admin:org_employee_change", args=[zhang.pk])).content.decode()
    assert reverse("admin:customers_transfer_departed", args=[zhang.pk]) in page
    assert reverse("admin:customers_transfer_onjob", args=[zhang.pk]) not in page and "在职继承" not in page
    response = client.get(start_url(zhang, "onjob"))
    assert response.status_code == 302 and response.url == start_url(zhang, "departed")
    form = client.get(response.url).content.decode()
    assert "保持在职" not in form and "将被标记为离职" not in form and "已离职" in form
    assert 'name="to_employees"' in form  # 3 customers still to hand over
    preview = client.post(response.url, {"to_employees": [scene["li"].pk], "keep_portrait": "on",
                                         "step": "preview_first"}).content.decode()
    assert "将把 张三 (zhangsan) 的 <b>3</b> 位客户转给以下继承人" in preview
    assert "将被标记为离职" not in preview  # he has left already: nothing to warn about


@pytest.mark.django_db
def test_departed_employee_with_no_customers_is_told_so_without_a_form(client, scene):
    wang = scene["wang"]
    wang.status = EmployeeStatus.DEPARTED
    wang.save()
    client.force_login(scene["hr"])
    page = client.get(start_url(wang)).content.decode()
    assert "该成员没有需要继承的客户" in page
    assert reverse("admin:customers_transfer_changelist") + f"?from_employee__exact={wang.pk}" in page
    assert "将被标记为离职" not in page and 'name="to_employees"' not in page
    posted = client.post(start_url(wang), {"to_employees": [scene["li"].pk], "step": "confirm"})
    assert posted.status_code == 200 and not Transfer.objects.exists()
    past = reverse("admin:customers_transfer_changelist") + f"?from_employee__exact={wang.pk}"
    assert client.get(past).status_code == 200


@pytest.mark.django_db
def test_inheritor_picker_lists_other_active_employees_with_department(client, scene):
    from tests.factories import DepartmentFactory

    sales = DepartmentFactory(name="华东销售部")
    scene["li"].departments.add(sales)
    EmployeeFactory(userid="gone", name="老赵", status=EmployeeStatus.DEPARTED)
    client.force_login(scene["hr"])
    page = client.get(start_url(scene["zhang"])).content.decode()
    assert 'type="checkbox" name="to_employees"' in page and 'id="tp-inheritor-filter"' in page
    assert "李四 (lisi) · 华东销售部" in page and "王五 (wangwu)" in page
    assert "老赵" not in page and f'name="to_employees" value="{scene["zhang"].pk}"' not in page


@pytest.mark.django_db
def test_result_page_links_customers_to_their_portrait(client, scene, django_capture_on_commit_callbacks):
    client.force_login(scene["hr"])
    data = {"to_employees": [scene["li"].pk], "keep_portrait": "on", "step": "confirm"}
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(start_url(scene["zhang"]), data)
    result = client.get(done.url).content.decode()
    for customer in scene["customers"]:
        assert f'<a href="{reverse("admin:customers_customer_change", args=[customer.pk])}">{customer}</a>' in result


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["abc/change/", "abc/", "start/abc/departed/change/", "1 or 1/change/"])
def test_a_mistyped_transfer_address_is_a_404_not_a_server_error(client, scene, path):
    client.force_login(scene["hr"])
    response = client.get(reverse("admin:customers_transfer_changelist") + path, follow=True)
    assert response.status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_transfer_result_page_does_not_scroll_sideways_at_390_px(page, scene):
    """Its per-customer table (customer, external id, inheritor, outcome, notes, time) is wider than a
    phone: the table scrolls inside its box, the page stays put."""
    from customers.transfers import transfer_start
    from org.actors import Actor

    for i, customer in enumerate(scene["customers"]):  # WeCom's external ids are ~32 characters
        customer.external_userid = f"wmQJ8bDwAAyT5wK3p0R7xvZl2cYhN{i:04d}"
        customer.save(update_fields=["external_userid"])
    transfer = transfer_start(actor=Actor(employee=scene["hr"]), from_employee=scene["zhang"],
                              to_employees=[scene["li"]], keep_portrait=True, mark_departed=True)
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, "hr")
    page.goto(reverse("admin:customers_transfer_change", args=[transfer.pk]))
    page.wait_for_selector("#tp-items")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def summary_text(html: str) -> str:
    """The start page's summary paragraphs as a reader sees them: tags dropped, whitespace collapsed."""
    paragraphs = re.findall(r'<p[^>]*class="tp-summary"[^>]*>(.*?)</p>', html, re.S)
    return " | ".join(" ".join(re.sub(r"<[^>]+>", "", p).split()) for p in paragraphs)


@pytest.mark.django_db
def test_the_start_page_puts_no_space_after_a_chinese_full_stop(client, scene):
    """"正在跟进 3 位客户。 该成员已离职。": the template's line break between two messages showed as a
    space after "。". Chinese sentences follow each other directly; English ones after a space."""
    zhang, wang = scene["zhang"], scene["wang"]
    wang.status = EmployeeStatus.DEPARTED
    wang.save()
    client.force_login(scene["hr"])
    pages = {"departed": start_url(zhang), "onjob": start_url(zhang, "onjob")}
    texts = {mode: summary_text(client.get(url).content.decode()) for mode, url in pages.items()}
    zhang.status = EmployeeStatus.DEPARTED
    zhang.save()
    texts["already departed"] = summary_text(client.get(start_url(zhang)).content.decode())
    texts["nothing to hand over"] = summary_text(client.get(start_url(wang)).content.decode())
    assert texts["departed"] == ("张三 (zhangsan) 正在跟进 3 位客户。"
                                 "确认后该成员将被标记为离职，不能再登录或通过 API 操作。")
    assert texts["onjob"] == "张三 (zhangsan) 正在跟进 3 位客户。在职继承：该成员保持在职，只转出客户。"
    assert texts["already departed"] == "张三 (zhangsan) 正在跟进 3 位客户。该成员已离职。"
    assert texts["nothing to hand over"] == ("王五 (wangwu) 正在跟进 0 位客户。该成员已离职。 | "
                                             "该成员没有需要继承的客户。查看该成员的客户继承记录")

    client.cookies["django_language"] = "en"
    english = summary_text(client.get(start_url(zhang)).content.decode())
    assert english == "张三 (zhangsan) follows 3 customers. This employee has departed."
    english = summary_text(client.get(start_url(wang)).content.decode())
    assert english.endswith("This employee has no customers to transfer. See this employee's customer transfers")


@pytest.mark.django_db
def test_a_departed_employees_page_says_the_customers_were_handed_over(client, scene,
                                                                       django_capture_on_commit_callbacks):
    """Once every customer of a departed employee is handed over, their page says so and names the
    transfer, instead of asking (again) to hand them over through 离职继承."""
    from customers import transfers
    from org.actors import Actor

    zhang, wang = scene["zhang"], scene["wang"]
    page_url = reverse("admin:org_employee_change", args=[zhang.pk])
    client.force_login(scene["hr"])
    with django_capture_on_commit_callbacks(execute=True):
        transfers.transfer_start(actor=Actor(employee=scene["hr"]), from_employee=zhang, to_employees=[scene["li"]],
                                 keep_portrait=True, customer_ids=[scene["customers"][0].pk], mark_departed=True)
    page = client.get(page_url).content.decode()
    assert "他跟进的客户请通过“离职继承”交给其他成员" in page  # two customers are still his

    with django_capture_on_commit_callbacks(execute=True):
        transfer = transfers.transfer_start(actor=Actor(employee=scene["hr"]), from_employee=zhang,
                                            to_employees=[scene["li"]], keep_portrait=True, mark_departed=True)
    assert not FollowRelation.objects.filter(employee=zhang, status=RelationStatus.ACTIVE).exists()
    page = client.get(page_url).content.decode()
    note = re.search(r'<p class="errornote tp-departed-note">(.*?)</p>', page, re.S).group(1)
    link = reverse("admin:customers_transfer_change", args=[transfer.pk])
    assert note == ("该成员已离职：不能登录，也不能通过 API 操作。"
                    f'他跟进的客户已通过 <a href="{link}">客户继承 #{transfer.pk}</a> 交给其他成员。')

    client.force_login(EmployeeFactory(userid="boss", roles=["manager"]))  # sees employees, not transfers
    page = client.get(page_url).content.decode()
    assert "他跟进的客户已交给其他成员。" in page and link not in page and "请通过" not in page

    wang.status = EmployeeStatus.DEPARTED
    wang.save()
    client.force_login(scene["hr"])
    page = client.get(reverse("admin:org_employee_change", args=[wang.pk])).content.decode()
    assert "他没有需要交接的客户。" in page and "请通过" not in page
