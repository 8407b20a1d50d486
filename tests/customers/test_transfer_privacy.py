"""Rule 9 in transfers: personal tags are visible to their owner alone, not to HR or admins.
The preview (admin and API), the result page and the transfer's details give counts, never names."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from customers.models import Transfer
from tags.models import PersonalTag
from tests.conftest import as_employee
from tests.customers.test_transfer import personal_names, portrait
from tests.factories import CustomerFactory, EmployeeFactory

pytestmark = pytest.mark.django_db

SECRETS = ("张三的私密标签", "Weekend", "李四的秘密")


@pytest.fixture
def scene(db):
    hr = EmployeeFactory(userid="hr", name="人事小王", roles=["hr"])
    zhang = EmployeeFactory(userid="zhangsan", name="张三")
    li = EmployeeFactory(userid="lisi", name="李四")
    customers = [portrait(zhang, CustomerFactory(name=f"客户{i}"), tags=SECRETS[:2]) for i in range(3)]
    PersonalTag.objects.create(owner=li, name="weekend")  # merges with 张三's "Weekend"
    PersonalTag.objects.create(owner=li, name=SECRETS[2])  # li's own, unrelated
    return {"hr": hr, "zhang": zhang, "li": li, "customers": customers}


def assert_no_names(text: str) -> None:
    for name in (*SECRETS, "weekend"):
        assert name not in text, name


def test_admin_preview_shows_counts_of_personal_tags_not_their_names(client, scene):
    client.force_login(scene["hr"])
    url = reverse("admin:customers_transfer_start", args=[scene["zhang"].pk, "departed"])
    html = client.post(url, {"to_employees": [scene["li"].pk], "keep_portrait": "on", "step": "preview_first"})
    html = html.content.decode()
    assert "tp-preview-table" in html
    assert_no_names(html)
    row = re.search(r"<td>李四 \(lisi\)</td>(.*?)</tr>", html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>\s*([^<]*?)\s*</td>", row)
    # customers, already following, already transferred, taggings, distinct tags, name conflicts, notes, messages
    assert cells == ["3", "0", "0", "6", "2", "1", "3", "3"]


def test_api_preview_shows_counts_of_personal_tags_not_their_names(scene):
    hr = as_employee(scene["hr"])
    response = hr.post("/api/v1/transfers/preview/", {"from_employee": "zhangsan", "to_employees": ["lisi"]},
                       format="json")
    assert response.status_code == 200, response.content
    assert_no_names(response.content.decode())
    plan = response.json()["inheritors"][0]
    assert (plan["personal_taggings"], plan["personal_tags"], plan["conflicts"]) == (6, 2, 1)


def test_result_page_and_transfer_details_name_no_personal_tags(client, scene, django_capture_on_commit_callbacks):
    hr = as_employee(scene["hr"])
    with django_capture_on_commit_callbacks(execute=True):
        started = hr.post("/api/v1/transfers/", {"from_employee": "zhangsan", "to_employees": ["lisi"]},
                          format="json")
    assert started.status_code == 202, started.content
    transfer = Transfer.objects.get()
    assert personal_names(scene["li"], scene["customers"][0]) == {"weekend", SECRETS[0]}  # moved indeed
    detail = hr.get(f"/api/v1/transfers/{transfer.pk}/")
    items = hr.get(f"/api/v1/transfers/{transfer.pk}/items/")
    assert detail.status_code == 200 and items.status_code == 200
    assert_no_names(detail.content.decode())
    assert_no_names(items.content.decode())
    assert {i["detail"].get("personal_tags") for i in items.json()["results"]} == {2}
    client.force_login(scene["hr"])
    page = client.get(reverse("admin:customers_transfer_change", args=[transfer.pk])).content.decode()
    assert "个人标签 +2" in page
    assert_no_names(page)
    job = hr.get(f"/api/v1/jobs/{transfer.job_id}/")
    assert job.status_code == 200
    assert_no_names(job.content.decode())
    job_page = client.get(reverse("admin:customers_job_change", args=[transfer.job_id]))
    assert job_page.status_code == 200
    assert_no_names(job_page.content.decode())
