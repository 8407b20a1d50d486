"""No raw internals in the UI: the API's JSON parse error in the caller's language, import errors
naming the group by position and name (not groups[1].name), job logs and durations in words, no
delete button the service would refuse, the personal-tag name's limit said instead of cut."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from customers.models import PersonalTagging
from org.actors import Actor
from tests.conftest import bearer_client, login
from tests.factories import CustomerFactory, EmployeeFactory, make_api_client, make_tag_group

pytestmark = pytest.mark.django_db


def test_a_body_that_is_not_json_is_a_400_in_the_callers_language():
    api = bearer_client(make_api_client()[1])
    response = api.post("/api/v1/tag-groups/", data="{name: 1", content_type="application/json")
    body = response.json()
    assert response.status_code == 400 and body["error"]["code"] == "parse_error"
    assert body["error"]["message"] == "请求体不是有效的 JSON（第 1 行第 2 列附近）。"
    assert "JSON parse error" not in response.content.decode()
    api.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"], HTTP_ACCEPT_LANGUAGE="en")
    english = api.post("/api/v1/tag-groups/", data="{name: 1", content_type="application/json").json()
    assert english["error"]["message"] == "The request body is not valid JSON (near line 1, column 2)."


def test_import_errors_name_the_group_by_position_and_name():
    admin = EmployeeFactory(userid="boss", roles=["tag_admin"])
    bad = {"groups": [{"name": "客户等级", "tags": ["VIP"]},
                      {"name": "意向", "tags": [{"name": "高"}, {"name": "x" * 31}]}]}
    page = login(admin).post(reverse("admin:tags_taggroup_import"), {"text": json.dumps(bad)}).content.decode()
    assert "第 2 个标签组“意向” › 第 2 个标签“xxxxxxxx" in page
    assert "groups[1]" not in page and "tags[1]" not in page


def test_job_log_and_duration_in_words(django_capture_on_commit_callbacks):
    from customers.jobs import bulk_tagging_start

    manager = EmployeeFactory(userid="boss", roles=["manager"])
    _g, (vip,) = make_tag_group("等级", tags=["VIP"])
    CustomerFactory.create_batch(2, followers=[manager])
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_tagging_start(actor=Actor(employee=manager), add=[vip.pk], source="bulk", filter_params={})
    client = login(manager)
    page = client.get(reverse("admin:customers_job_change", args=[job.pk])).content.decode()
    log = re.search(r"<h2>日志</h2>(.*?)</table>", page, re.S).group(1)
    assert "执行者：网页进程内执行（未配置 Celery）" in log and ">local<" not in log
    listing = client.get(reverse("admin:customers_job_changelist")).content.decode()
    assert "0.0 s" not in listing and ("不到 0.1 秒" in listing or re.search(r"\d\.\d 秒", listing))


def test_no_delete_button_the_service_would_refuse():
    hr = EmployeeFactory(userid="hr", roles=["hr"])
    busy = EmployeeFactory(userid="busy")
    CustomerFactory(followers=[busy])
    idle = EmployeeFactory(userid="idle")
    client = login(hr)
    assert 'class="deletelink"' not in client.get(reverse("admin:org_employee_change", args=[busy.pk])).content.decode()
    assert 'class="deletelink"' in client.get(reverse("admin:org_employee_change", args=[idle.pk])).content.decode()


def test_personal_tag_name_over_30_characters_is_refused_not_cut():
    staff = EmployeeFactory(userid="staff")
    customer = CustomerFactory(followers=[staff])
    client = login(staff)
    url = reverse("sidebar-portrait", args=[customer.external_userid])
    form = client.get(url).content.decode()
    field = re.search(r'<input[^>]*name="tags-new_personal_tag"[^>]*>', form).group(0)
    assert "maxlength" not in field and "最多 30 个字符" in form
    page = client.post(url, {"_action": "tags", "tags-new_personal_tag": "长" * 31}).content.decode()
    assert "最多 30 个字符（现在 31 个）" in page
    assert not PersonalTagging.objects.exists()


def test_no_delete_button_on_a_department_still_in_use():
    from tests.factories import DepartmentFactory

    admin = EmployeeFactory(userid="boss", roles=["enterprise_admin"], is_superuser=True)
    used, empty = DepartmentFactory(name="Sales"), DepartmentFactory(name="Empty")
    EmployeeFactory(departments=[used])
    client = login(admin)
    def page(department):
        return client.get(reverse("admin:org_department_change", args=[department.pk])).content.decode()

    assert 'class="deletelink"' not in page(used)
    assert 'class="deletelink"' in page(empty)
