"""What stays private after a hand-over or in an export: a remark transferred without the portrait
is hidden from the inheritor (rule 12), and exports show only the viewer's own personal tags."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import FollowRelation, PersonalTagging
from tags.models import PersonalTag
from tests.customers.world import actor, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- archived remarks (rule 12)


def test_remark_of_a_relation_transferred_without_the_portrait_is_hidden_from_the_inheritor(world):
    w = world
    FollowRelation.objects.filter(customer=w.c_shared, employee=w.after_staff).update(
        remark="王五的备注", description="王五的描述", status="transferred", transferred_to=w.staff,
        portrait_kept=False)
    url = reverse("admin:customers_customer_change", args=[w.c_shared.pk])

    def followers_html(employee):
        client = Client()
        client.force_login(employee)
        return client.get(url).content.decode().split('id="followers"')[1].split("</section>")[0]

    html = followers_html(w.staff)
    assert "王五的备注" not in html and "王五的描述" not in html and "已归档" in html
    for insider in (w.hr, w.admin):
        html = followers_html(insider)
        assert "王五的备注" in html and "王五的描述" in html
    # With the portrait kept, the remark went along: nothing is archived.
    FollowRelation.objects.filter(customer=w.c_shared, employee=w.after_staff).update(portrait_kept=True)
    assert "王五的备注" in followers_html(w.staff)


# ---------------------------------------------------------------- exports show only one's own personal tags


def test_export_shows_only_the_viewers_own_personal_tags(world):
    w = world
    mine = PersonalTag.objects.create(owner=w.staff, name="我的私标")
    theirs = PersonalTag.objects.create(owner=w.after_staff, name="王五私标")
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=mine)
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=theirs)
    for viewer, expected in ((w.staff, "我的私标"), (w.admin, "")):
        client = Client()
        client.force_login(viewer)
        response = client.get(reverse("admin:customers_customer_export_csv"))
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        row = next(r for r in csv.reader(io.StringIO(body)) if r[1] == w.c_shared.external_userid)
        assert row[-1] == expected and "王五私标" not in body
