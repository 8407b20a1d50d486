"""The customer list's bulk action (ticked rows, or all N matching the filter) and the job pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Job, JobKind, JobStatus, Tagging
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:customers_customer_changelist"


@pytest.fixture
def world(db):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)  # transactional tests earlier in the session flush the role permissions
    _g, (vip, cold) = make_tag_group("等级", tags=["VIP", "冷淡"])
    _l, (black,) = make_tag_group("合规", locked=True, tags=["黑名单"])
    manager = EmployeeFactory(userid="manager1", roles=["manager"])
    mine = CustomerFactory.create_batch(6, followers=[manager])
    for c in mine[:4]:
        Tagging.objects.create(customer=c, tag=cold)
    others = CustomerFactory.create_batch(3)
    for c in others:
        Tagging.objects.create(customer=c, tag=cold)
    return {"vip": vip, "cold": cold, "black": black, "manager": manager, "mine": mine, "others": others}


def action_post(client, query: str, data: dict):
    return client.post(reverse(CHANGELIST) + query, {"action": "bulk_tag_action", **data})


def test_select_all_matching_shows_n_then_starts_a_filter_job(client, world, django_capture_on_commit_callbacks):
    client.force_login(world["manager"])
    query = f"?tags_any={world['cold'].pk}"
    first = world["mine"][0].pk
    page = action_post(client, query, {"select_across": "1", "_selected_action": [first], "index": "0"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "全部 4 位客户" in html and "冷淡" in html  # N and the filter, in Chinese
    assert f'name="op_{world["black"].pk}" value="add" disabled' in html  # locked: greyed for a manager
    with django_capture_on_commit_callbacks(execute=True):
        response = action_post(client, query, {"select_across": "1", "_selected_action": [first],
                                               "add": [world["vip"].pk], "confirm": "1"})
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:customers_job_change", args=[job.pk])
    assert job.params["filter"] == {"tags_any": str(world["cold"].pk)}  # a filter, not a list of ids
    assert job.status == JobStatus.SUCCEEDED and job.total == job.done == 4
    # Only the manager's matching customers: not the 3 others with the same tag.
    assert set(Tagging.objects.filter(tag=world["vip"]).values_list("customer_id", flat=True)) == {
        c.pk for c in world["mine"][:4]}
    job_page = client.get(response["Location"])
    assert job_page.status_code == 200
    text = job_page.content.decode()
    assert "已完成" in text and "撤销此任务" in text and "100.0%" in text


def test_ticked_rows_become_an_id_job(client, world, django_capture_on_commit_callbacks):
    client.force_login(world["manager"])
    ticked = [world["mine"][4].pk, world["mine"][5].pk]
    page = action_post(client, "", {"select_across": "0", "_selected_action": ticked, "index": "0"})
    assert "勾选的 2 位客户" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        action_post(client, "", {"select_across": "0", "_selected_action": ticked,
                                 "remove": [world["cold"].pk], "add": [world["vip"].pk], "confirm": "1"})
    job = Job.objects.get()
    assert job.params["customers"] == sorted(ticked)
    assert set(Tagging.objects.filter(tag=world["vip"]).values_list("customer_id", flat=True)) == set(ticked)


def test_confirm_without_tags_or_with_a_locked_tag_is_a_form_error(client, world):
    client.force_login(world["manager"])
    base = {"select_across": "1", "_selected_action": [world["mine"][0].pk], "confirm": "1"}
    page = action_post(client, "", base)
    assert page.status_code == 200 and "请至少选择一个" in page.content.decode()
    page = action_post(client, "", {**base, "add": [world["black"].pk]})
    assert page.status_code == 200 and "errornote" in page.content.decode()
    assert not Job.objects.exists() and not Tagging.objects.filter(tag=world["black"]).exists()


def test_bad_filter_in_the_url_starts_nothing(client, world):
    client.force_login(world["manager"])
    response = action_post(client, "?department=abc", {"select_across": "1",
                                                       "_selected_action": [world["mine"][0].pk], "index": "0"})
    assert response.status_code in (200, 302)
    assert not Job.objects.exists()


def test_undo_and_cancel_buttons(client, world, django_capture_on_commit_callbacks, monkeypatch):
    client.force_login(world["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        action_post(client, "", {"select_across": "1", "_selected_action": [world["mine"][0].pk],
                                 "add": [world["vip"].pk], "confirm": "1"})
    job = Job.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:customers_job_undo", args=[job.pk]))
    undo = Job.objects.get(kind=JobKind.UNDO)
    assert response["Location"] == reverse("admin:customers_job_change", args=[undo.pk])
    assert undo.status == JobStatus.SUCCEEDED and not Tagging.objects.filter(tag=world["vip"]).exists()
    assert reverse("admin:customers_job_change", args=[job.pk]) in client.get(response["Location"]).content.decode()
    # A second undo is refused with a message.
    client.post(reverse("admin:customers_job_undo", args=[job.pk]))
    assert Job.objects.filter(kind=JobKind.UNDO).count() == 1

    from customers import jobs

    monkeypatch.setattr(jobs, "job_enqueue", lambda job_id: None)
    action_post(client, "", {"select_across": "1", "_selected_action": [world["mine"][0].pk],
                             "add": [world["vip"].pk], "confirm": "1"})
    pending = Job.objects.filter(status=JobStatus.PENDING).get()
    assert "取消任务" in client.get(reverse("admin:customers_job_change", args=[pending.pk])).content.decode()
    client.post(reverse("admin:customers_job_cancel", args=[pending.pk]))
    pending.refresh_from_db()
    assert pending.status == JobStatus.CANCELLED


def test_job_list_and_pages_are_the_actor_s_own(client, world, django_capture_on_commit_callbacks):
    client.force_login(world["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        action_post(client, "", {"select_across": "1", "_selected_action": [world["mine"][0].pk],
                                 "add": [world["vip"].pk], "confirm": "1"})
    job = Job.objects.get()
    page_url = reverse("admin:customers_job_change", args=[job.pk])
    listing = client.get(reverse("admin:customers_job_changelist") + "?kind=bulk_tagging&status=succeeded")
    assert listing.status_code == 200 and page_url in listing.content.decode()
    assert "已完成" in listing.content.decode() and "新增 6" in listing.content.decode()
    other = EmployeeFactory(roles=["manager"])
    client.force_login(other)
    assert client.get(reverse("admin:customers_job_change", args=[job.pk])).status_code == 404
    assert client.post(reverse("admin:customers_job_undo", args=[job.pk])).status_code == 404
    assert page_url not in client.get(reverse("admin:customers_job_changelist")).content.decode()
    boss = EmployeeFactory(roles=["enterprise_admin"])
    client.force_login(boss)
    assert client.get(reverse("admin:customers_job_change", args=[job.pk])).status_code == 200


def test_single_choice_error_re_renders_the_form_naming_the_group_and_keeping_choices(client, world):
    from tests.factories import make_tag_group

    _stage, (first, won) = make_tag_group("跟进阶段", single_choice=True, tags=["初访", "成交"])
    client.force_login(world["manager"])
    query = f"?tags_any={world['cold'].pk}"
    page = action_post(client, query, {"select_across": "1", "_selected_action": [world["mine"][0].pk],
                                       f"op_{first.pk}": "add", f"op_{won.pk}": "add",
                                       f"op_{world['cold'].pk}": "remove", "confirm": "1"})
    assert page.status_code == 200 and not Job.objects.exists()
    html = page.content.decode()
    assert "「跟进阶段」是单选标签组" in html and "初访、成交" in html  # named, next to the group
    assert 'class="errorlist tp-group-errors"' in html
    assert "全部 4 位客户" in html and 'name="select_across" value="1"' in html  # scope kept
    for tag, op in ((first, "add"), (won, "add"), (world["cold"], "remove")):
        assert f'name="op_{tag.pk}" value="{op}" checked' in html  # choices kept
    assert "将为 4 位客户添加：初访、成交；移除：冷淡" in html


def test_each_tag_is_added_or_removed_never_both(client, world, django_capture_on_commit_callbacks):
    client.force_login(world["manager"])
    ticked = [world["mine"][0].pk]
    page = action_post(client, "", {"select_across": "0", "_selected_action": ticked, "index": "0"}).content.decode()
    vip = world["vip"].pk
    for value in ("", "add", "remove"):  # one radio group per tag: 不变 / 添加 / 移除
        assert f'type="radio" name="op_{vip}" value="{value}"' in page
    assert 'type="checkbox" name="add"' not in page
    assert "尚未选择要添加或移除的标签" in page and page.index('id="tp-bulk-summary"') < page.index('name="confirm"')
    with django_capture_on_commit_callbacks(execute=True):
        response = action_post(client, "", {"select_across": "0", "_selected_action": ticked,
                                            f"op_{vip}": "add", f"op_{world['cold'].pk}": "remove", "confirm": "1"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.params["add"] == [vip] and job.params["remove"] == [world["cold"].pk]
    assert Tagging.objects.filter(customer_id=ticked[0], tag_id=vip).exists()
    assert not Tagging.objects.filter(customer_id=ticked[0], tag=world["cold"]).exists()
