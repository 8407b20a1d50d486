"""The portrait page (客户画像): reach, the one tag form (hidden tags survive, single-choice radios,
locked groups greyed and refused), personal tags, notes, chat history and the tag history."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Message, Note, PersonalTagging, TagEvent, Tagging
from tags.models import PersonalTag
from tests.conftest import login
from tests.customers.world import world_fixture  # noqa: F401


def url(customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def tags_of(customer) -> set[str]:
    return set(Tagging.objects.filter(customer=customer).values_list("tag__name", flat=True))


def form_post(w, customer, client, **groups) -> dict:
    """The tag form as the browser sends it: each group's current tags unless overridden."""
    held = set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True))
    data = {"_action": "tags"}
    for group in (w.level, w.stage, w.key_group):
        key = f"tags-group_{group.pk}"
        current = [str(t.pk) for t in group.tags.all() if t.pk in held]
        data[key] = current[0] if group.single_choice and current else ("" if group.single_choice else current)
    data.update(groups)
    return data


# ---------------------------------------------------------------- reach


def test_portrait_out_of_reach_is_404(world):
    w = world
    assert login(w.manager).get(url(w.c_team)).status_code == 404  # sub-department member's customer
    assert login(w.manager).get(url(w.c_after)).status_code == 404
    assert login(w.staff).get(url(w.c_after)).status_code == 404
    assert login(w.staff).post(url(w.c_after), {"_action": "tags"}).status_code == 404
    assert login(w.manager).get(url(w.c_staff)).status_code == 200
    assert login(w.hr).get(url(w.c_team)).status_code == 200


def test_hr_sees_a_read_only_portrait(world):
    w = world
    response = login(w.hr).get(url(w.c_staff))
    html = response.content.decode()
    assert 'id="save-tags"' not in html
    assert login(w.hr).post(url(w.c_staff), form_post(w, w.c_staff, None)).status_code == 403


# ---------------------------------------------------------------- the tag form


def test_edit_keeps_tags_hidden_from_the_editor(world):
    w = world
    for t in (w.vip, w.hot, w.maintenance):  # 保养到期 is scoped to 售后部: hidden from the manager
        Tagging.objects.create(customer=w.c_shared, tag=t)
    client = login(w.manager)
    html = client.get(url(w.c_shared)).content.decode()
    assert "保养到期" not in html
    response = client.post(url(w.c_shared), form_post(w, w.c_shared, client, **{
        f"tags-group_{w.level.pk}": [str(w.potential.pk)],
        f"tags-group_{w.stage.pk}": str(w.won.pk),
    }))
    assert response.status_code == 302
    assert tags_of(w.c_shared) == {"潜在客户", "已成交", "保养到期"}


def test_single_choice_group_is_radio_buttons_with_none(world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.hot)
    client = login(w.staff)
    html = client.get(url(w.c_staff)).content.decode()
    name = f"tags-group_{w.stage.pk}"
    assert f'type="radio" name="{name}" value="{w.hot.pk}"' in html
    assert f'type="radio" name="{name}" value=""' in html  # the "无" choice
    assert f'type="checkbox" name="tags-group_{w.level.pk}"' in html

    client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{name: str(w.won.pk)}))
    assert tags_of(w.c_staff) == {"已成交"}
    client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{name: ""}))
    assert tags_of(w.c_staff) == set()


def test_two_tags_of_a_single_choice_group_is_a_form_error(world):
    w = world
    client = login(w.staff)
    response = client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{
        f"tags-group_{w.stage.pk}": [str(w.hot.pk), str(w.won.pk)],
        f"tags-group_{w.level.pk}": [str(w.vip.pk)],
    }))
    assert response.status_code == 200
    assert response.context["tags_form"].errors
    assert tags_of(w.c_staff) == set()


def test_locked_group_is_greyed_for_staff(world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.key_account)
    html = login(w.staff).get(url(w.c_staff)).content.decode()
    assert "tp-taggroup tp-depth-0 tp-readonly" in html
    assert f'value="{w.key_account.pk}" id="id_tags-group_{w.key_group.pk}_{w.key_account.pk}" checked disabled' in html
    # a normal save (hidden inputs post the locked value back) goes through
    client = login(w.staff)
    response = client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{
        f"tags-group_{w.level.pk}": [str(w.vip.pk)],
    }))
    assert response.status_code == 302
    assert tags_of(w.c_staff) == {"京津冀重点客户", "VIP客户"}


@pytest.mark.parametrize("locked_value", ["remove", "add"])
def test_crafted_post_on_a_locked_group_is_refused_and_changes_nothing(world, locked_value):
    w = world
    if locked_value == "remove":
        Tagging.objects.create(customer=w.c_staff, tag=w.key_account)
    before = tags_of(w.c_staff)
    client = login(w.staff)
    data = form_post(w, w.c_staff, client, **{f"tags-group_{w.level.pk}": [str(w.vip.pk)]})
    data[f"tags-group_{w.key_group.pk}"] = [] if locked_value == "remove" else [str(w.key_account.pk)]
    response = client.post(url(w.c_staff), data)
    assert response.status_code == 200
    errors = response.context["tags_form"].errors
    assert f"group_{w.key_group.pk}" in errors and "锁定" in str(errors)
    assert tags_of(w.c_staff) == before  # not even the VIP tag asked for alongside
    assert not TagEvent.objects.filter(customer=w.c_staff).exists()


def test_tag_admin_may_change_locked_tags(world):
    w = world
    client = login(w.tag_admin)
    html = client.get(url(w.c_staff)).content.decode()
    assert "tp-readonly" not in html
    client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{
        f"tags-group_{w.key_group.pk}": [str(w.key_account.pk)]}))
    assert tags_of(w.c_staff) == {"京津冀重点客户"}


def test_saved_changes_show_in_the_tag_history(world):
    w = world
    client = login(w.staff)
    client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{f"tags-group_{w.level.pk}": [str(w.vip.pk)]}))
    event = TagEvent.objects.get(customer=w.c_staff)
    assert (event.tag_name, event.action, event.source, event.actor_employee) == ("VIP客户", "add", "manual", w.staff)
    html = client.get(url(w.c_staff)).content.decode()
    history = html.split('id="tag-history"')[1]
    assert "VIP客户" in history and "张三" in history and "手动" in history


def test_automation_in_the_tag_history_reads_in_the_readers_language(world):
    """A channel code's change is stored with its Chinese label; the history names it in English for an
    English reader (and as stored for a Chinese one)."""
    w = world
    TagEvent.objects.create(customer=w.c_staff, tag=w.vip, tag_name="VIP客户", action="add", source="channel",
                            actor_label="渠道活码「2026北京车展」#3")
    client = login(w.staff)
    history = client.get(url(w.c_staff)).content.decode().split('id="tag-history"')[1]
    assert "渠道活码「2026北京车展」" in history and "#3" not in history
    client.cookies["django_language"] = "en"
    history = client.get(url(w.c_staff), HTTP_ACCEPT_LANGUAGE="en").content.decode().split('id="tag-history"')[1]
    assert "Channel code “2026北京车展”" in history and "渠道活码" not in history


def test_tag_history_hides_events_of_hidden_tags_and_others_personal_tags(world):
    w = world
    theirs = PersonalTag.objects.create(owner=w.after_staff, name="王五私标")
    for name, kw in (("保养到期", {"tag": w.maintenance}), ("王五私标", {"personal_tag": theirs}),
                     ("VIP客户", {"tag": w.vip})):
        TagEvent.objects.create(customer=w.c_shared, tag_name=name, action="add", source="manual", **kw)
    html = login(w.staff).get(url(w.c_shared)).content.decode().split('id="tag-history"')[1]
    assert "VIP客户" in html and "保养到期" not in html and "王五私标" not in html


# ---------------------------------------------------------------- personal tags


def test_personal_tags_create_inline_and_apply(world):
    w = world
    client = login(w.staff)
    response = client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{"tags-new_personal_tag": " 周末联系 "}))
    assert response.status_code == 302
    tag = PersonalTag.objects.get(owner=w.staff, name="周末联系")
    assert PersonalTagging.objects.filter(customer=w.c_staff, personal_tag=tag).exists()
    # unticking removes it again, the tag itself stays the employee's
    client.post(url(w.c_staff), form_post(w, w.c_staff, client))
    assert not PersonalTagging.objects.filter(customer=w.c_staff).exists()
    assert PersonalTag.objects.filter(pk=tag.pk).exists()


def test_personal_tags_only_on_customers_one_follows(world):
    w = world
    html = login(w.manager).get(url(w.c_staff)).content.decode()
    assert "你没有跟进这位客户" in html
    assert 'name="tags-new_personal_tag"' not in html


def test_other_peoples_personal_tags_are_not_shown(world):
    w = world
    theirs = PersonalTag.objects.create(owner=w.after_staff, name="王五私标")
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=theirs)
    assert "王五私标" not in login(w.staff).get(url(w.c_shared)).content.decode()
    assert "王五私标" in login(w.after_staff).get(url(w.c_shared)).content.decode()


# ---------------------------------------------------------------- notes and chat


def test_add_a_note(world):
    w = world
    client = login(w.staff)
    response = client.post(url(w.c_staff), {"_action": "note", "note-text": "客户周末方便电话沟通"})
    assert response.status_code == 302
    note = Note.objects.get(customer=w.c_staff)
    assert (note.author, note.text) == (w.staff, "客户周末方便电话沟通")
    assert "客户周末方便电话沟通" in client.get(url(w.c_staff)).content.decode()


def test_empty_note_is_a_form_error(world):
    response = login(world.staff).post(url(world.c_staff), {"_action": "note", "note-text": "   "})
    assert response.status_code == 200
    assert response.context["note_form"].errors
    assert not Note.objects.exists()


def test_chat_history_is_paged_newest_first(world):
    w = world
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=1)
    Message.objects.bulk_create([
        Message(msgid=f"m{i}", customer=w.c_staff, employee=w.staff, direction="in" if i % 2 else "out",
                content=f"消息{i:02d}", sent_at=start + timedelta(minutes=i))
        for i in range(25)
    ])
    client = login(w.staff)
    first = client.get(url(w.c_staff)).content.decode()
    assert first.index("消息24") < first.index("消息23")
    assert "消息04" not in first
    second = client.get(url(w.c_staff), {"mp": 2}).content.decode()
    assert "消息04" in second and "消息24" not in second


# ---------------------------------------------------------------- crafted input


@pytest.mark.parametrize("field, value", [
    ("level", "999999"),           # no such tag
    ("level", "maintenance"),      # a tag of a group hidden from the editor
    ("level", "hot"),              # a visible tag, but of another group
])
def test_crafted_tag_ids_are_form_errors_and_change_nothing(world, field, value):
    w = world
    client = login(w.staff)
    group = getattr(w, field)
    bad = str(getattr(w, value).pk) if not value.isdigit() else value
    data = form_post(w, w.c_staff, client, **{f"tags-group_{group.pk}": [str(w.vip.pk), bad]})
    response = client.post(url(w.c_staff), data)
    assert response.status_code == 200
    assert response.context["tags_form"].errors
    assert tags_of(w.c_staff) == set()


def test_someone_elses_personal_tag_cannot_be_posted(world):
    w = world
    theirs = PersonalTag.objects.create(owner=w.after_staff, name="王五私标")
    client = login(w.staff)
    data = form_post(w, w.c_shared, client, **{"tags-personal_tags": [str(theirs.pk)]})
    response = client.post(url(w.c_shared), data)
    assert response.status_code == 200
    assert "personal_tags" in response.context["tags_form"].errors
    assert not PersonalTagging.objects.exists()


def test_too_long_new_personal_tag_is_a_form_error(world):
    w = world
    client = login(w.staff)
    response = client.post(url(w.c_staff), form_post(w, w.c_staff, client, **{
        "tags-new_personal_tag": "长" * 31, f"tags-group_{w.level.pk}": [str(w.vip.pk)]}))
    assert response.status_code == 200
    assert "new_personal_tag" in response.context["tags_form"].errors
    assert tags_of(w.c_staff) == set() and not PersonalTag.objects.filter(owner=w.staff).exists()


def test_a_refused_tag_save_says_so_at_the_top_of_the_portrait(world):
    """The reason is marked at its field, a screen below; the reloaded page opens at the top, where
    a message must say the tags were not saved (desktop portrait and phone sidebar alike)."""
    from django.contrib.messages import get_messages

    w = world
    client = login(w.staff)
    data = form_post(w, w.c_staff, client, **{"tags-new_personal_tag": "长" * 31})
    for page in (url(w.c_staff), reverse("sidebar-portrait", args=[w.c_staff.external_userid])):
        response = client.post(page, data)
        assert response.status_code == 200
        assert [str(m) for m in get_messages(response.wsgi_request)] == ["标签没有保存：请查看下面标出的问题。"]
        html = response.content.decode()
        assert html.index("标签没有保存") < html.index("最多 30 个字符（现在 31 个）")


def test_follow_relations_show_remark_description_way_and_state(world):
    w = world
    from customers.models import FollowRelation

    FollowRelation.objects.filter(customer=w.c_shared, employee=w.staff).update(
        remark="王总", description="周末方便电话", add_way=1, state="poster-618")
    html = login(w.staff).get(url(w.c_shared)).content.decode().split('id="followers"')[1].split("</section>")[0]
    for text in ("张三", "王五", "王总", "周末方便电话", "扫描二维码", "poster-618", "跟进中"):
        assert text in html, text


def test_notes_and_chat_archived_by_a_transfer_without_portrait_are_hidden(world):
    w = world
    from customers.models import FollowRelation

    Note.objects.create(customer=w.c_shared, author=w.after_staff, text="王五的旧记录")
    Message.objects.create(msgid="old-1", customer=w.c_shared, employee=w.after_staff, direction="out",
                           content="王五的旧聊天")
    FollowRelation.objects.filter(customer=w.c_shared, employee=w.after_staff).update(
        status="transferred", transferred_to=w.staff, portrait_kept=False)
    html = login(w.staff).get(url(w.c_shared)).content.decode()
    assert "王五的旧记录" not in html and "王五的旧聊天" not in html
    html = login(w.hr).get(url(w.c_shared)).content.decode()
    assert "王五的旧记录" in html and "王五的旧聊天" in html
