"""Corp tags both ways, against the WeCom stand-in over real HTTP: the portal's three levels pushed
as WeCom's two (group named by its path), renames/moves/deletes pushed, WeCom's changes applied
back through the tags services (audited as wecom) and never echoed."""

from __future__ import annotations

import pytest

from customers.models import Customer, TagEvent, Tagging, TagSource
from customers.services import customer_tags_update
from tags import services as tag_services
from tags.models import Tag, TagGroup
from tests.wecom.conftest import post_event
from tests.wecom.sync_world import ADMIN, customer, employee, push, taxonomy, wecom_tags
from wecom.mapping import ELLIPSIS, wecom_group_name
from wecom.models import TaxonomyPush
from wecom.services import wecom_events_process

pytestmark = pytest.mark.django_db


def groups_in_wecom(sim) -> dict[str, list[str]]:
    """WeCom's groups as get_corp_tag_list shows them: name → tag names, larger order first."""
    from wecom.taxonomy import corp_tags_fetch

    return {g["group_name"]: [t["name"] for t in g["tag"]] for g in corp_tags_fetch()}


def test_three_levels_become_groups_named_by_their_path(wecom_fake):
    t = taxonomy()
    push()
    assert groups_in_wecom(wecom_fake) == {"客户画像/行业/制造业": ["汽车零部件", "电子"], "客户等级": ["VIP", "普通"]}
    t["making"].refresh_from_db()
    t["parts"].refresh_from_db()
    assert t["making"].external_id in wecom_fake.state.tag_groups
    assert wecom_fake.state.find_tag(t["parts"].external_id)[1].name == "汽车零部件"
    # groups holding only sub-groups have no WeCom counterpart
    assert TagGroup.objects.get(pk=t["root"].pk).external_id is None
    assert TagGroup.objects.get(pk=t["industry"].pk).external_id is None


def test_a_long_path_keeps_the_group_name_and_its_nearest_ancestors():
    path = ["华北区域重点客户画像维度", "制造业细分行业分类", "汽车零部件一级供应商"]
    name = wecom_group_name(path)
    assert len(name) <= 30
    assert name == ELLIPSIS + "制造业细分行业分类/汽车零部件一级供应商"
    assert wecom_group_name(["短", "路径"]) == "短/路径"
    assert wecom_group_name(["甲" * 29, "乙" * 30]) == "乙" * 30


def test_renames_moves_and_order_are_pushed(wecom_fake):
    t = taxonomy()
    push()
    tag_services.tag_update(actor=ADMIN, tag=t["parts"], name="汽车零件")
    tag_services.tag_group_update(actor=ADMIN, group=t["industry"], name="行业分类")
    tags = Tag.objects.filter(group=t["level"]).order_by("order")
    tag_services.tags_reorder(actor=ADMIN, group=t["level"], ordered_ids=[t["normal"].pk, t["vip"].pk])
    assert [x.name for x in tags] == ["普通", "VIP"]
    push()
    assert groups_in_wecom(wecom_fake) == {"客户画像/行业分类/制造业": ["汽车零件", "电子"],
                                           "客户等级": ["普通", "VIP"]}


def test_deleting_the_last_tag_deletes_the_wecom_group_and_unlinks_ours(wecom_fake):
    t = taxonomy()
    push()
    old = TagGroup.objects.get(pk=t["making"].pk).external_id
    tag_services.tag_delete(actor=ADMIN, tag=t["parts"])
    push()
    assert groups_in_wecom(wecom_fake)["客户画像/行业/制造业"] == ["电子"]
    tag_services.tag_delete(actor=ADMIN, tag=Tag.objects.get(pk=t["electronics"].pk))
    push()
    assert "客户画像/行业/制造业" not in groups_in_wecom(wecom_fake)
    assert wecom_fake.state.tag_groups[old].deleted
    assert TagGroup.objects.get(pk=t["making"].pk).external_id is None
    # a new tag in the group creates a new WeCom group by name
    tag_services.tag_create(actor=ADMIN, group=t["making"], name="机械")
    push()
    assert groups_in_wecom(wecom_fake)["客户画像/行业/制造业"] == ["机械"]
    assert TagGroup.objects.get(pk=t["making"].pk).external_id not in (None, old)


def test_deleting_a_group_deletes_its_wecom_groups(wecom_fake):
    t = taxonomy()
    push()
    tag_services.tag_group_delete(actor=ADMIN, group=t["root"])
    push()
    assert list(groups_in_wecom(wecom_fake)) == ["客户等级"]


def test_a_moved_tag_is_recreated_in_its_new_group_and_marked_again(wecom_fake):
    zhang = employee(wecom_fake, "zhangwei")
    t = taxonomy()
    push()
    c = customer(wecom_fake, "wmMOVE", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[t["parts"].pk], source=TagSource.API)
    push()
    old = Tag.objects.get(pk=t["parts"].pk).external_id
    assert wecom_tags(wecom_fake, "wmMOVE", "zhangwei") == {old}
    tag_services.tag_move(actor=ADMIN, tag=Tag.objects.get(pk=t["parts"].pk), group=t["level"])
    push()
    new = Tag.objects.get(pk=t["parts"].pk).external_id
    assert new != old
    assert groups_in_wecom(wecom_fake)["客户等级"][-1] == "汽车零部件"
    assert wecom_tags(wecom_fake, "wmMOVE", "zhangwei") == {new}


def deliver(sim, fields: dict) -> None:
    response = post_event(sim, fields)
    assert response.status_code == 200 and response.content == b"success"
    wecom_events_process()


def tag_event(change: str, ident: str, kind: str = "tag") -> dict:
    return {"ToUserName": "corp", "FromUserName": "sys", "CreateTime": 1700000000, "MsgType": "event",
            "Event": "change_external_tag", "Id": ident, "TagType": kind, "ChangeType": change}


def test_changes_made_in_wecom_come_back_and_are_not_echoed(wecom_fake):
    zhang = employee(wecom_fake, "zhangwei")
    t = taxonomy()
    push()
    c = customer(wecom_fake, "wmBACK", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[t["vip"].pk], source=TagSource.API)
    push()
    vip_ext = Tag.objects.get(pk=t["vip"].pk).external_id
    level_ext = TagGroup.objects.get(pk=t["level"].pk).external_id
    api = __import__("wecom.taxonomy", fromlist=["client"]).client()
    # An admin renames a tag and a group and adds a tag in WeCom's console
    api.post("externalcontact/edit_corp_tag", {"id": vip_ext, "name": "VIP客户"})
    api.post("externalcontact/edit_corp_tag", {"id": level_ext, "name": "客户分级"})
    added = api.post("externalcontact/add_corp_tag", {"group_id": level_ext, "tag": [{"name": "流失"}]})
    new_ext = added["tag_group"]["tag"][0]["id"]
    wecom_fake.clear_calls()
    deliver(wecom_fake, tag_event("update", vip_ext))
    deliver(wecom_fake, tag_event("update", level_ext, "tag_group"))
    deliver(wecom_fake, tag_event("create", new_ext))
    assert Tag.objects.get(pk=t["vip"].pk).name == "VIP客户"
    assert TagGroup.objects.get(pk=t["level"].pk).name == "客户分级"
    assert Tag.objects.get(external_id=new_ext).group_id == t["level"].pk
    assert TaxonomyPush.objects.filter(status="pending").count() == 0  # nothing queued: not echoed
    push()
    assert not wecom_fake.calls("externalcontact/edit_corp_tag")
    assert not wecom_fake.calls("externalcontact/add_corp_tag")
    # Deleted in WeCom: deleted here, the customers' removal audited as wecom, nothing pushed back
    api.post("externalcontact/del_corp_tag", {"tag_id": [vip_ext]})
    deliver(wecom_fake, tag_event("delete", vip_ext))
    assert not Tag.objects.filter(pk=t["vip"].pk).exists()
    assert not Tagging.objects.filter(customer=c).exists()
    removal = TagEvent.objects.filter(customer=c, action="remove").get()
    assert removal.source == TagSource.WECOM
    push()
    assert not wecom_fake.calls("externalcontact/del_corp_tag")[1:]
    assert not wecom_fake.calls("externalcontact/mark_tag")


def test_shuffle_rereads_everything_and_a_new_console_group_arrives(wecom_fake):
    t = taxonomy()
    push()
    api = __import__("wecom.taxonomy", fromlist=["client"]).client()
    api.post("externalcontact/add_corp_tag", {"group_name": "来源渠道", "order": 5,
                                              "tag": [{"name": "展会", "order": 2}, {"name": "官网", "order": 1}]})
    deliver(wecom_fake, tag_event("shuffle", ""))
    group = TagGroup.objects.get(name="来源渠道", parent=None)
    assert [x.name for x in group.tags.order_by("order")] == ["展会", "官网"]
    assert Customer.objects.count() == 0
    before = (TagGroup.objects.count(), Tag.objects.count())
    deliver(wecom_fake, tag_event("shuffle", ""))  # again: nothing changes
    assert (TagGroup.objects.count(), Tag.objects.count()) == before
    assert TagGroup.objects.get(pk=t["making"].pk).external_id


def test_a_change_wecom_refuses_for_good_fails_at_once_and_the_rest_goes_on(wecom_fake):
    """Console-made tags may not be edited by the app (301002): that rename fails, the next changes go."""
    from wecom.simulator import CorpTag, CorpTagGroup

    wecom_fake.state.tag_groups["egCONSOLE"] = CorpTagGroup(group_id="egCONSOLE", group_name="来源", tag=[
        CorpTag(id="etCONSOLE", name="展会")])
    deliver(wecom_fake, tag_event("shuffle", ""))
    console_tag = Tag.objects.get(external_id="etCONSOLE")
    t = taxonomy()
    push()
    tag_services.tag_update(actor=ADMIN, tag=console_tag, name="线下展会")
    tag_services.tag_update(actor=ADMIN, tag=t["vip"], name="VIP客户")
    push()
    failed = TaxonomyPush.objects.get(status="failed")
    assert failed.object_id == console_tag.pk and "301002" in failed.last_error
    assert groups_in_wecom(wecom_fake)["客户等级"] == ["VIP客户", "普通"]
