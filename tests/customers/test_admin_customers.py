"""The admin's customer list (客户列表): filters with the API's names, who sees which customers,
the tag chips, the exports and bad filters."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from customers.models import FollowRelation, PersonalTagging, Tagging
from tags.models import PersonalTag
from tests.conftest import login
from tests.customers.world import world_fixture  # noqa: F401
from tests.factories import CustomerFactory

LIST = "admin:customers_customer_changelist"


def tag(customer, *tags):
    for t in tags:
        Tagging.objects.create(customer=customer, tag=t)


def listed(client, **params) -> set[str]:
    response = client.get(reverse(LIST), params)
    assert response.status_code == 200, response
    return {c.name for c in response.context["cl"].result_list}


def ids(*tags) -> str:
    return ",".join(str(t.pk) for t in tags)


# ---------------------------------------------------------------- filters


def test_tags_all_any_none(tagged):
    w = tagged
    client = login(w.manager)
    assert listed(client, tags_all=ids(w.vip, w.hot)) == {"热客户"}
    assert listed(client, tags_all=ids(w.vip), tags_none=ids(w.won)) == {"热客户"}
    assert listed(client, tags_any=ids(w.hot, w.potential)) == {"热客户", "冷客户"}
    assert listed(client, tags_none=ids(w.vip)) == {"冷客户", "张三的客户", "经理的客户", "共同客户"}


def test_repeated_tag_params_from_checkboxes_become_the_api_form(tagged):
    w = tagged
    response = login(w.manager).get(f"{reverse(LIST)}?tags_all={w.vip.pk}&tags_all={w.hot.pk}")
    assert response.status_code == 302
    assert f"tags_all={w.vip.pk}%2C{w.hot.pk}" in response["Location"]


def test_department_filter_is_exact(tagged):
    w = tagged
    client = login(w.hr)
    names = listed(client, department=w.sales.pk)
    assert "热客户" in names and "经理的客户" in names
    assert "一组的客户" not in names  # followed by a member of the sub-department only
    assert listed(client, department=w.sales_team.pk) == {"一组的客户"}


def test_follower_and_state_filters(tagged):
    w = tagged
    client = login(w.hr)
    assert listed(client, follower="lisi") == {"一组的客户"}
    FollowRelation.objects.filter(customer=w.c_hot).update(state="poster-618")
    assert listed(client, state="poster-618") == {"热客户"}
    assert listed(client, q="热客") == {"热客户"}


def test_count_shown_for_a_filter(tagged):
    w = tagged
    response = login(w.manager).get(reverse(LIST), {"tags_all": ids(w.vip)})
    assert response.context["cl"].result_count == 2
    assert "共 <strong>2</strong> 位客户符合条件" in response.content.decode()


# ---------------------------------------------------------------- who sees what


def test_staff_sees_only_their_own_customers(tagged):
    w = tagged
    assert listed(login(w.staff)) == {"张三的客户", "共同客户", "热客户", "已成交客户", "冷客户"}
    assert listed(login(w.team_staff)) == {"一组的客户"}


def test_manager_sees_managed_departments_exactly(tagged):
    w = tagged
    names = listed(login(w.manager))
    assert "经理的客户" in names and "张三的客户" in names
    assert "一组的客户" not in names  # member of a sub-department: not inherited
    assert "售后的客户" not in names


def test_hr_sees_everyone(tagged):
    assert {"一组的客户", "售后的客户", "热客户"} <= listed(login(tagged.hr))


# ---------------------------------------------------------------- rows


def test_rows_show_only_visible_tags_and_own_personal_tags(tagged):
    w = tagged
    tag(w.c_shared, w.vip, w.maintenance)  # 保养到期 is scoped to 售后部
    mine = PersonalTag.objects.create(owner=w.staff, name="周末联系")
    theirs = PersonalTag.objects.create(owner=w.after_staff, name="王五的私标")
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=mine)
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=theirs)
    html = login(w.staff).get(reverse(LIST)).content.decode()
    assert "VIP客户" in html and "周末联系" in html
    assert "保养到期" not in html and "王五的私标" not in html


def test_no_query_per_row(tagged, django_assert_max_num_queries):
    w = tagged
    client = login(w.hr)
    client.get(reverse(LIST))  # warm caches (content types, sessions)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse(LIST))
    for i in range(30):
        c = CustomerFactory(name=f"批量{i}", followers=[w.staff, w.manager])
        tag(c, w.vip, w.hot)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(LIST))
    assert len(response.context["cl"].result_list) >= 35


# ---------------------------------------------------------------- bad filters


@pytest.mark.parametrize("params", [{"tags_all": "abc"}, {"department": "x"}, {"added_from": "2024-13-40"}])
def test_bad_filter_is_a_message_not_a_500(tagged, params):
    response = login(tagged.manager).get(reverse(LIST), params)
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("筛选条件无效" in t for t in texts), texts


@pytest.mark.parametrize("language, expected", [
    ("zh-hans", "筛选条件无效，未显示任何客户：添加日期起：2024-13-40。请修改筛选条件。"),
    ("en", "Invalid filter, no customers shown: Added from: 2024-13-40. Please change the filter."),
])
def test_bad_filter_message_names_the_field_once_in_the_pages_words(tagged, language, expected):
    """Not "筛选条件无效，…：筛选条件无效：added_from（添加日期起：…）": the parameter's label, once,
    with the page's punctuation (no full-width colon on the English page)."""
    client = login(tagged.manager)
    client.cookies["django_language"] = language
    response = client.get(reverse(LIST), {"added_from": "2024-13-40"})
    assert [str(m) for m in get_messages(response.wsgi_request)] == [expected]


def test_filtering_by_a_hidden_tag_is_refused(tagged):
    w = tagged
    tag(w.c_shared, w.maintenance)
    response = login(w.staff).get(reverse(LIST), {"tags_all": ids(w.maintenance)})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    texts = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "筛选条件无效" in texts and str(w.maintenance.pk) in texts


# ---------------------------------------------------------------- exports


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_csv_export_keeps_the_filter_and_shows_visible_tags_only(tagged):
    w = tagged
    tag(w.c_hot, w.maintenance)  # hidden from the manager
    response = login(w.manager).get(
        reverse("admin:customers_customer_export_csv"), {"tags_all": ids(w.vip), "tags_none": ids(w.won)}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv(response)
    header, body = rows[0], rows[1:]
    assert [r[header.index("名称")] for r in body] == ["热客户"]
    tags_cell = body[0][header.index("企业标签")]
    assert "客户等级:VIP客户" in tags_cell and "转化阶段:高意向" in tags_cell
    assert "保养到期" not in tags_cell
    assert body[0][header.index("跟进成员")] == "张三"


def test_csv_export_walks_every_chunk(tagged, monkeypatch):
    import customers.admin as customers_admin

    monkeypatch.setattr(customers_admin, "EXPORT_CHUNK", 2)
    rows = _csv(login(tagged.staff).get(reverse("admin:customers_customer_export_csv")))
    assert len(rows) - 1 == 5  # all of 张三's customers, across three chunks, no duplicates
    assert len({r[0] for r in rows[1:]}) == 5


def test_excel_export(tagged):
    from openpyxl import load_workbook

    w = tagged
    response = login(w.manager).get(reverse("admin:customers_customer_export_xlsx"), {"tags_any": ids(w.hot, w.won)})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    names = {r[rows[0].index("名称")] for r in rows[1:]}
    assert names == {"热客户", "已成交客户"}


def test_excel_export_is_capped_with_a_message(tagged, monkeypatch):
    import customers.admin as customers_admin

    monkeypatch.setattr(customers_admin, "EXCEL_MAX_ROWS", 2)
    response = login(tagged.staff).get(reverse("admin:customers_customer_export_xlsx"), {"q": "客户"})
    assert response.status_code == 302
    assert "q=" in response["Location"]
    texts = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "CSV" in texts


def test_export_with_a_bad_filter_goes_back_with_a_message(tagged):
    response = login(tagged.staff).get(reverse("admin:customers_customer_export_csv"), {"tags_any": "x"})
    assert response.status_code == 302
    assert any("筛选条件无效" in str(m) for m in get_messages(response.wsgi_request))


# ---------------------------------------------------------------- counts at scale


def test_huge_unfiltered_list_uses_an_estimate_but_a_filter_counts_exactly(tagged, monkeypatch):
    from django.db import connection

    import customers.admin as customers_admin

    if connection.vendor != "postgresql":
        pytest.skip("the planner's estimate is a PostgreSQL feature")
    w = tagged
    monkeypatch.setattr(customers_admin, "ESTIMATE_ABOVE", 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    client = login(w.hr)
    response = client.get(reverse(LIST))
    assert response.context["cl"].estimated
    assert "位客户（估算）" in response.content.decode()
    response = client.get(reverse(LIST), {"tags_all": ids(w.vip)})
    assert not response.context["cl"].estimated
    assert response.context["cl"].result_count == 2
    # a staff member's own list is filtered by reach: always exact
    assert not login(w.staff).get(reverse(LIST)).context["cl"].estimated


def test_slow_counts_are_done_after_the_page_shows(tagged, monkeypatch):
    from django.db import connection

    import customers.admin as customers_admin

    if connection.vendor != "postgresql":
        pytest.skip("the count budget is a PostgreSQL statement timeout")
    w = tagged
    monkeypatch.setattr(customers_admin.CustomerAdmin, "list_per_page", 2)
    monkeypatch.setattr(customers_admin, "_count_within", lambda qs, ms: None)  # the budget ran out
    client = login(w.staff)
    response = client.get(reverse(LIST), {"q": "客户"})
    cl = response.context["cl"]
    assert cl.capped and not cl.exact_count
    assert [c.name for c in cl.result_list] and len(cl.result_list) == 2
    html = response.content.decode()
    assert "data-count-url" in html and "3+" in html  # a lower bound: this page and one more row
    count = client.get(reverse("admin:customers_customer_count"), {"q": "客户"})
    assert count.json() == {"count": 5}
    bad = client.get(reverse("admin:customers_customer_count"), {"tags_all": "x"})
    assert bad.status_code == 400 and "筛选条件无效" in bad.json()["error"]["message"]


def test_count_budget_gives_up_without_spoiling_the_transaction(tagged):
    from django.db import connection

    import customers.admin as customers_admin
    from customers.models import Customer

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL statement timeout")
    slow = Customer.objects.extra(where=["pg_sleep(0.05) IS NOT NULL"])
    assert customers_admin._count_within(slow, 10) is None
    assert customers_admin._count_within(Customer.objects.all(), 5000) == Customer.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone()[0] == "0"


def test_bulk_tag_action_is_offered_on_the_list(tagged):
    response = login(tagged.manager).get(reverse(LIST), {"tags_all": ids(tagged.vip)})
    html = response.content.decode()
    assert 'value="bulk_tag_action"' in html
    assert 'name="_selected_action"' in html
    assert "delete_selected" not in html
    assert 'value="bulk_tag_action"' not in login(tagged.hr).get(reverse(LIST)).content.decode()  # HR: view only


def test_exports_never_carry_a_formula(tagged):
    from openpyxl import load_workbook

    w = tagged
    CustomerFactory(name="=HYPERLINK(\"http://evil\")", corp_name="+1-2", followers=[w.staff])
    client = login(w.staff)
    rows = _csv(client.get(reverse("admin:customers_customer_export_csv"), {"q": "HYPERLINK"}))
    assert rows[1][2] == "'=HYPERLINK(\"http://evil\")" and rows[1][3] == "'+1-2"
    response = client.get(reverse("admin:customers_customer_export_xlsx"), {"q": "HYPERLINK"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    cell = sheet.cell(row=2, column=3)
    assert cell.data_type == "s" and cell.value == "'=HYPERLINK(\"http://evil\")"


def test_follower_filter_hint_is_words_not_a_field_name(tagged):
    import re

    page = login(tagged.manager).get(reverse(LIST)).content.decode()
    field = re.search(r'<input[^>]*name="follower"[^>]*>', page).group(0)
    assert 'placeholder="输入姓名或账号选择"' in field and "userid" not in field
