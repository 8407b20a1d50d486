"""`POST tagging/bulk/` and `jobs/` over the API: all-or-nothing, limits, scope, jobs, undo, cancel."""

from __future__ import annotations

import pytest

from customers.models import Job, JobKind, JobStatus, TagEvent, Tagging, TagSource
from tests.conftest import as_employee
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db

BULK = "/api/v1/tagging/bulk/"


@pytest.fixture
def vip(db):
    return make_tag_group("等级", tags=["VIP", "普通"])[1]


def test_explicit_operations_apply_and_count(key_api, vip):
    a, b = CustomerFactory.create_batch(2)
    Tagging.objects.create(customer=b, tag=vip[0])
    response = key_api.post(BULK, {"operations": [
        {"customer": a.pk, "add": [vip[0].pk, vip[1].pk]},
        {"external_userid": b.external_userid, "add": [vip[0].pk], "remove": [vip[1].pk]},
    ]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"added": 2, "removed": 0, "unchanged": 2}
    assert set(Tagging.objects.values_list("customer_id", "tag_id")) == {
        (a.pk, vip[0].pk), (a.pk, vip[1].pk), (b.pk, vip[0].pk)}
    assert set(TagEvent.objects.values_list("source", flat=True)) == {TagSource.API}
    assert TagEvent.objects.filter(actor_client__isnull=False).count() == 2


def test_one_bad_item_among_many_rejects_the_whole_call(key_api, vip):
    customers = CustomerFactory.create_batch(300)
    operations = [{"customer": c.pk, "add": [vip[0].pk]} for c in customers]
    operations.insert(137, {"customer": 10**9, "add": [vip[0].pk]})
    operations.append({"external_userid": "nobody-here", "add": [vip[0].pk]})
    operations.append({"customer": customers[0].pk, "add": ["x"]})
    response = key_api.post(BULK, {"operations": operations}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_items"
    bad = {item["index"]: item for item in body["details"]}
    assert set(bad) == {137, 301, 302}
    assert bad[137]["customer"] == 10**9 and bad[137]["errors"][0]["code"] == "not_found"
    assert bad[301]["external_userid"] == "nobody-here"
    assert not Tagging.objects.exists() and not TagEvent.objects.exists()


def test_unknown_tag_rejects_everything(key_api, vip):
    a, b = CustomerFactory.create_batch(2)
    response = key_api.post(BULK, {"operations": [
        {"customer": a.pk, "add": [vip[0].pk]}, {"customer": b.pk, "add": [987654]}]}, format="json")
    assert response.status_code == 400
    assert [d["index"] for d in response.json()["error"]["details"]] == [1]
    assert response.json()["error"]["details"][0]["errors"][0]["code"] == "unknown_tags"
    assert not Tagging.objects.exists()


def test_more_than_10000_operations_is_413(key_api, vip):
    response = key_api.post(BULK, {"operations": [{"customer": 1, "add": [vip[0].pk]}] * 10_001}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_out_of_scope_tag_for_named_employee_is_rejected(key_api):
    sales, other = DepartmentFactory(name="销售"), DepartmentFactory(name="财务")
    staff = EmployeeFactory(userid="zhangsan", departments=[sales])
    _g, (secret,) = make_tag_group("财务专用", departments=[other], tags=["欠款"])
    customer = CustomerFactory(followers=[staff])
    response = key_api.post(BULK, {"employee": "zhangsan", "operations": [
        {"customer": customer.pk, "add": [secret.pk]}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["errors"][0]["code"] == "unknown_tags"
    # The same call at enterprise level may use it.
    response = key_api.post(BULK, {"operations": [{"customer": customer.pk, "add": [secret.pk]}]}, format="json")
    assert response.status_code == 200


def test_locked_tag_refused_for_staff_employee(key_api):
    staff = EmployeeFactory(userid="lisi", roles=["staff"])
    _g, (locked,) = make_tag_group("合规", locked=True, tags=["黑名单"])
    customer = CustomerFactory(followers=[staff])
    response = key_api.post(BULK, {"employee": "lisi", "operations": [
        {"customer": customer.pk, "add": [locked.pk]}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["errors"][0]["code"] == "locked"
    response = key_api.post(BULK, {"employee": "lisi", "filter": {}, "add": [locked.pk]}, format="json")
    assert response.status_code == 400 and not Job.objects.exists()
    assert not Tagging.objects.exists()


def test_staff_cannot_reach_customers_they_do_not_follow(key_api, vip):
    staff = EmployeeFactory(userid="wangwu", roles=["staff"])
    theirs = CustomerFactory()
    response = key_api.post(BULK, {"employee": "wangwu", "operations": [
        {"customer": theirs.pk, "add": [vip[0].pk]}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["errors"][0]["code"] == "not_found"
    assert staff.pk and not Tagging.objects.exists()


def test_single_choice_group_keeps_one_tag(key_api):
    _g, (hot, cold) = make_tag_group("意向", single_choice=True, tags=["高", "低"])
    customer = CustomerFactory()
    Tagging.objects.create(customer=customer, tag=cold)
    response = key_api.post(BULK, {"operations": [{"customer": customer.pk, "add": [hot.pk]}]}, format="json")
    assert response.json() == {"added": 1, "removed": 1, "unchanged": 0}
    assert list(Tagging.objects.values_list("tag_id", flat=True)) == [hot.pk]
    response = key_api.post(BULK, {"operations": [{"customer": customer.pk, "add": [hot.pk, cold.pk]}]},
                            format="json")
    assert response.status_code == 400


def test_read_only_key_cannot_bulk_tag(read_only_api, vip):
    customer = CustomerFactory()
    response = read_only_api.post(BULK, {"operations": [{"customer": customer.pk, "add": [vip[0].pk]}]},
                                  format="json")
    assert response.status_code == 403 and not Tagging.objects.exists()


@pytest.mark.parametrize("body", [
    {},
    {"operations": [], "filter": {}},
    {"operations": "all"},
    {"filter": {"department": "sales"}, "add": [1]},
    {"filter": {"tag_any": "1"}, "add": [1]},
    {"filter": "tags_any=1", "add": [1]},
    {"filter": {}, "add": "1"},
])
def test_malformed_bodies_are_400_and_start_nothing(key_api, vip, body):
    if body.get("add") == [1]:
        body = {**body, "add": [vip[0].pk]}
    response = key_api.post(BULK, body, format="json")
    assert response.status_code == 400, response.json()
    assert not Job.objects.exists()


def test_filter_answers_202_with_a_job_that_tags_the_matching_customers(
    key_api, vip, django_capture_on_commit_callbacks
):
    matching = CustomerFactory.create_batch(4)
    others = CustomerFactory.create_batch(3)
    for c in matching:
        Tagging.objects.create(customer=c, tag=vip[1])
    with django_capture_on_commit_callbacks(execute=True):
        response = key_api.post(BULK, {"filter": {"tags_any": str(vip[1].pk)}, "add": [vip[0].pk]}, format="json")
    assert response.status_code == 202
    job_id = response.json()["job"]
    body = key_api.get(f"/api/v1/jobs/{job_id}/").json()
    for key in ("id", "kind", "status", "total", "done", "failed_items", "errors", "created_at", "finished_at"):
        assert key in body
    assert body["kind"] == JobKind.BULK_TAGGING and body["status"] == JobStatus.SUCCEEDED
    assert body["total"] == body["done"] == 4 and body["progress"]["percent"] == 100.0
    assert body["undoable"] is True
    assert set(Tagging.objects.filter(tag=vip[0]).values_list("customer_id", flat=True)) == {c.pk for c in matching}
    assert others
    # Undo over the API: a job of its own, reversing exactly these four.
    with django_capture_on_commit_callbacks(execute=True):
        response = key_api.post(f"/api/v1/jobs/{job_id}/undo/")
    assert response.status_code == 202
    undo = key_api.get(f"/api/v1/jobs/{response.json()['job']}/").json()
    assert undo["kind"] == JobKind.UNDO and undo["status"] == JobStatus.SUCCEEDED and undo["undo_of"] == job_id
    assert not Tagging.objects.filter(tag=vip[0]).exists()
    assert key_api.post(f"/api/v1/jobs/{job_id}/undo/").status_code == 409
    assert key_api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 409


def test_jobs_are_visible_to_their_actor_and_admins_only(vip, django_capture_on_commit_callbacks):
    staff = EmployeeFactory(roles=["staff"])
    other = EmployeeFactory(roles=["staff"])
    boss = EmployeeFactory(roles=["enterprise_admin"])
    CustomerFactory(followers=[staff])
    with django_capture_on_commit_callbacks(execute=True):
        response = as_employee(staff).post(BULK, {"filter": {}, "add": [vip[0].pk]}, format="json")
    job_id = response.json()["job"]
    assert as_employee(staff).get(f"/api/v1/jobs/{job_id}/").status_code == 200
    assert as_employee(boss).get(f"/api/v1/jobs/{job_id}/").status_code == 200
    assert as_employee(other).get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert as_employee(other).post(f"/api/v1/jobs/{job_id}/undo/").status_code == 404
    assert [j["id"] for j in as_employee(other).get("/api/v1/jobs/").json()["results"]] == []
    assert [j["id"] for j in as_employee(staff).get("/api/v1/jobs/").json()["results"]] == [job_id]


def test_api_client_sees_its_own_jobs(key_api, api, vip, django_capture_on_commit_callbacks):
    from tests.factories import make_api_client

    CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        job_id = key_api.post(BULK, {"filter": {}, "add": [vip[0].pk]}, format="json").json()["job"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_client('other-crm')[1]}")
    assert api.get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert key_api.get(f"/api/v1/jobs/{job_id}/").status_code == 200


def test_cancel_pending_job_over_api(key_api, vip, monkeypatch):
    from customers import jobs

    monkeypatch.setattr(jobs, "job_enqueue", lambda job_id: None)  # no worker picks it up
    CustomerFactory()
    job_id = key_api.post(BULK, {"filter": {}, "add": [vip[0].pk]}, format="json").json()["job"]
    response = key_api.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == JobStatus.CANCELLED
    assert not Tagging.objects.exists()


def test_filter_job_with_employee_touches_only_their_customers(key_api, vip, django_capture_on_commit_callbacks):
    staff = EmployeeFactory(userid="zhaoliu", roles=["staff"])
    mine = CustomerFactory.create_batch(3, followers=[staff])
    CustomerFactory.create_batch(5)
    with django_capture_on_commit_callbacks(execute=True):
        response = key_api.post(BULK, {"employee": "zhaoliu", "filter": {}, "add": [vip[0].pk]}, format="json")
    job = Job.objects.get(pk=response.json()["job"])
    assert job.actor_employee == staff and job.total == 3
    assert set(Tagging.objects.values_list("customer_id", flat=True)) == {c.pk for c in mine}
    assert set(TagEvent.objects.values_list("source", flat=True)) == {TagSource.BULK}
    # The key that started it sees it, acting for the employee or at enterprise level; so does the employee.
    assert key_api.get(f"/api/v1/jobs/{job.pk}/?employee=zhaoliu").status_code == 200
    assert key_api.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert as_employee(staff).get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    other = EmployeeFactory(userid="other-staff", roles=["staff"])
    assert key_api.get(f"/api/v1/jobs/{job.pk}/?employee={other.userid}").status_code == 404


def test_filter_naming_a_hidden_tag_is_400(key_api):
    sales, other = DepartmentFactory(name="销售"), DepartmentFactory(name="财务")
    EmployeeFactory(userid="sunqi", departments=[sales])
    _g, (secret,) = make_tag_group("财务专用", departments=[other], tags=["欠款"])
    _v, (vip,) = make_tag_group("等级", tags=["VIP"])
    response = key_api.post(BULK, {"employee": "sunqi", "filter": {"tags_any": str(secret.pk)}, "add": [vip.pk]},
                            format="json")
    assert response.status_code == 400 and not Job.objects.exists()


def test_failed_items_are_listed_in_the_job(vip, django_capture_on_commit_callbacks):
    from customers.jobs import bulk_tagging_start
    from org.actors import Actor

    staff = EmployeeFactory(roles=["staff"])
    mine, theirs = CustomerFactory(followers=[staff]), CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_tagging_start(actor=Actor(employee=staff), add=[vip[0].pk], source=TagSource.BULK,
                                 customer_ids=[mine.pk, theirs.pk])
    body = as_employee(staff).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["failed_count"] == 1
    assert body["failed_items"] == [{"customer": theirs.pk, "errors": [
        {"code": "not_found", "message": "客户不存在或不可见"}]}]


def test_exactly_10000_operations_are_accepted_and_one_bad_one_rejects_them_all(key_api, vip):
    from customers.models import Customer

    Customer.objects.bulk_create([Customer(external_userid=f"wmbulk{i:05d}", name=f"客户{i}") for i in range(10_000)])
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    operations = [{"customer": c, "add": [vip[0].pk]} for c in ids]
    operations[9_999] = {"customer": ids[-1], "add": [vip[0].pk], "remove": [vip[0].pk]}
    response = key_api.post(BULK, {"operations": operations}, format="json")
    assert response.status_code == 400
    assert [d["index"] for d in response.json()["error"]["details"]] == [9_999]
    assert not Tagging.objects.exists() and not TagEvent.objects.exists()
    operations[9_999] = {"customer": ids[-1], "add": [vip[0].pk]}
    response = key_api.post(BULK, {"operations": operations}, format="json")
    assert response.status_code == 200 and response.json() == {"added": 10_000, "removed": 0, "unchanged": 0}
    assert TagEvent.objects.filter(tag=vip[0], source=TagSource.API).count() == 10_000
