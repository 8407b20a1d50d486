"""The portrait's tag groups: a locked group locks its whole subtree (greyed, a crafted post is
refused), and a group with only sub-groups shows a header row above them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Tagging
from customers.services import (
    customer_tags_update,
)
from tagportal.errors import NotAllowed
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import make_tag_group

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- a locked group locks its subtree


def group_block(html: str, name: str) -> str:
    """The portrait's row of one tag group (from its <div class="tp-taggroup ..."> to the next row)."""
    at = html.index(f'data-group="{name}"')
    start = html.rindex('<div class="tp-taggroup', 0, at)
    end = html.find('<div class="tp-taggroup', at)
    return html[start:end if end != -1 else html.index("tp-personal-row", at)]


@pytest.fixture
def locked_subtree(world):
    sub, (deep_tag,) = make_tag_group("重点子组", parent=world.key_group, tags=["子组标签"])
    return sub, deep_tag


def test_tag_of_a_sub_group_of_a_locked_group_is_refused_to_staff(world, locked_subtree):
    _sub, deep_tag = locked_subtree
    with pytest.raises(NotAllowed):
        customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[deep_tag], source="manual")
    customer_tags_update(actor=actor(world.tag_admin), customer=world.c_staff, add=[deep_tag], source="manual")
    assert Tagging.objects.filter(customer=world.c_staff, tag=deep_tag).exists()


def test_portrait_greys_a_sub_group_of_a_locked_group_and_refuses_a_crafted_post(world, locked_subtree):
    w = world
    sub, deep_tag = locked_subtree
    client = Client()
    client.force_login(w.staff)
    url = reverse("admin:customers_customer_change", args=[w.c_staff.pk])
    block = group_block(client.get(url).content.decode(), sub.name)
    assert "tp-readonly" in block and "disabled" in block and "锁定" in block
    response = client.post(url, {"_action": "tags", f"tags-group_{sub.pk}": [str(deep_tag.pk)],
                                 f"tags-group_{w.stage.pk}": ""})
    assert response.status_code == 200  # the form again, with the error
    assert not Tagging.objects.filter(tag=deep_tag).exists()


# ---------------------------------------------------------------- a group with only sub-groups


def test_portrait_shows_a_header_row_for_a_group_with_only_sub_groups(world):
    w = world
    industry, _ = make_tag_group("行业")
    making, _ = make_tag_group("制造业", parent=industry)
    make_tag_group("汽车", parent=making, tags=["整车厂", "零部件"])
    make_tag_group("空行业")  # no tags anywhere below: no row at all
    client = Client()
    client.force_login(w.staff)
    html = client.get(reverse("admin:customers_customer_change", args=[w.c_staff.pk])).content.decode()
    order = [html.index(f'data-group="{name}"') for name in ("行业", "制造业", "汽车")]
    assert order == sorted(order)
    assert "tp-group-header tp-depth-0" in html and "tp-group-header tp-depth-1" in html
    assert 'data-group="空行业"' not in html
