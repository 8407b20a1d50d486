"""Two managers of sibling departments: neither's dashboard ever counts the other's customers or
shows the other's tags, whatever happens on the other side; the API says the same."""

import datetime as dt

from customers.models import Message, Note
from insights.api.serializers import panel_payload
from insights.registry import panels_for
from insights.selectors import parse_panel_query
from insights.services import aggregates_refresh
from tests.conftest import as_employee
from tests.insights.world import (
    add_customer,
    days_ago,
    end,
    local,
    tag,
    world_fixture,  # noqa: F401
)


def dashboard(viewer, params=None) -> dict:
    """Every panel's payload as the viewer gets it (aggregates' time left out: it moves on refresh)."""
    q = parse_panel_query(params or {}, viewer=viewer)
    out = {}
    for panel in panels_for(viewer):
        payload = panel_payload(panel, q, panel.selector(q))
        payload.pop("as_of")
        out[panel.key] = payload
    return out


def shown_text(payload: dict) -> str:
    return " ".join(payload["categories"]) + " " + " ".join(s["name"] for s in payload["series"])


def grow_shanghai(w):
    """Much happens in 上海 only: new customers, tags (its own and open ones), removals, lost
    customers, notes and messages."""
    for i in range(7):
        c = add_customer(f"沪新客户{i}", [w.staff_sh], added=days_ago(i))
        tag(c, w.sh_tag, source="channel", when=local(days_ago(i)))
        tag(c, w.dormant, source="import", when=local(days_ago(i)))
        Note.objects.create(customer=c, author=w.staff_sh, text="x", created_at=local(days_ago(i)))
        Message.objects.create(msgid=f"sh-more-{i}", customer=c, employee=w.staff_sh, direction="out",
                               content="hi", sent_at=local(days_ago(i)))
    tag(w.sh_customers[1], w.vip, source="wecom", action="remove", when=local(days_ago(1)))
    end(w.sh_customers[2], w.staff_sh, on=days_ago(3))
    aggregates_refresh()


def test_sibling_managers_never_count_each_others_customers(world):
    before_bj = dashboard(world.manager_bj)
    before_sh = dashboard(world.manager_sh)
    grow_shanghai(world)
    after_bj = dashboard(world.manager_bj)
    after_sh = dashboard(world.manager_sh)
    assert after_bj == before_bj  # nothing of 上海 reaches 北京's manager, panel by panel
    assert after_sh != before_sh  # (and 上海's manager does see it: the data was counted)
    changed = {k for k in after_sh if after_sh[k] != before_sh[k]}
    assert {"untagged", "top_tags", "tagging_activity", "followups", "customers_daily"} <= changed


def test_each_sees_only_their_own_tags_and_departments(world):
    for viewer, own, other in ((world.manager_bj, "京A活动", "沪A活动"), (world.manager_sh, "沪A活动", "京A活动")):
        board = dashboard(viewer, {"from": days_ago(29).isoformat()})
        text = " ".join(shown_text(p) for p in board.values())
        assert own in text and other not in text
        assert ("上海" in text) == (viewer == world.manager_sh)  # departments and staff names
        coverage = board["tag_coverage"]
        assert "上海专属" not in coverage["categories"] or viewer == world.manager_sh


def test_the_shared_customer_counts_for_both_but_its_hidden_tag_for_one(world):
    bj = dashboard(world.manager_bj)
    sh = dashboard(world.manager_sh)
    # the 两地客户 was tagged 沪A活动 by the API two days ago: only 上海's activity counts that change
    bj_api = next(s for s in bj["tagging_activity"]["series"] if s["key"] == "api")
    sh_api = next(s for s in sh["tagging_activity"]["series"] if s["key"] == "api")
    assert sum(bj_api["data"]) == 0 and sum(sh_api["data"]) == 1
    assert bj["untagged"]["summary"]["customers"] == 6 + 1 + 1  # own six, the shared one, the lost one


def test_api_acting_as_each_manager_gives_their_numbers(world, read_only_api):
    for viewer in (world.manager_bj, world.manager_sh):
        expected = dashboard(viewer)
        for key in ("untagged", "customers_daily", "tagging_activity"):
            body = read_only_api.get(f"/api/v1/insights/{key}/", {"employee": viewer.userid}).json()
            body.pop("as_of")
            assert body == expected[key]
        session = as_employee(viewer).get("/api/v1/insights/top_tags/").json()
        session.pop("as_of")
        assert session == expected["top_tags"]


def test_a_department_outside_the_managers_scope_adds_nothing(world):
    """A manager may name any department: the figures stay inside what they see anyway (here only
    the 两地客户, whom 上海员工 follows too)."""
    board = dashboard(world.manager_bj, {"department": str(world.sh.pk)})
    assert board["untagged"]["summary"]["customers"] == 1
    daily = {s["key"]: sum(s["data"]) for s in board["customers_daily"]["series"]}
    assert daily == {"new": 1, "lost": 0}
    assert board["customers_by_employee"]["categories"] == []  # 上海's people are not 北京's team
    assert dt.date.fromisoformat(board["customers_daily"]["from"]) == days_ago(29)
