"""The built-in panels of the 数据看板 (registered from `InsightsConfig.ready()`)."""

from django.utils.translation import gettext_lazy as _

from . import selectors
from .registry import Panel, register_panel

TAXONOMY_ROLES = ("enterprise_admin", "tag_admin", "manager")
CUSTOMER_ROLES = ("enterprise_admin", "tag_admin", "hr", "manager", "staff")


def register_builtin_panels() -> None:
    register_panel(Panel(
        key="tag_coverage", title=_("标签组覆盖率"), section="tags", order=10, uses_dates=False,
        description=_("每个可见标签组：带有该组至少一个标签的客户占比。点击查看这些客户。"),
        selector=selectors.tag_coverage, chart={"kind": "hbar", "percent": True}, roles=TAXONOMY_ROLES,
    ))
    register_panel(Panel(
        key="untagged", title=_("未打标签的客户"), section="tags", order=20, uses_dates=False,
        description=_("没有任何企业标签的客户。点击查看并批量打标签。"),
        selector=selectors.untagged_customers, chart={"kind": "pie"},
    ))
    register_panel(Panel(
        key="top_tags", title=_("最常用的标签"), section="tags", order=30, uses_dates=False,
        description=_("带该标签的客户最多的 20 个标签。"),
        selector=selectors.top_tags, chart={"kind": "hbar"},
    ))
    register_panel(Panel(
        key="unused_tags", title=_("90 天未使用的标签"), section="tags", order=40, uses_dates=False,
        description=_("90 天内没有给任何客户打过的标签（清理候选），以及仍带着它的客户数。"),
        selector=selectors.unused_tags, chart={"kind": "hbar"}, roles=TAXONOMY_ROLES,
    ))
    register_panel(Panel(
        key="tagging_activity", title=_("每日标签变更（按来源）"), section="activity", order=10, wide=True,
        description=_("标签变更记录中每天的添加与移除次数，按来源分。点击查看当天被该来源改过标签的客户。"),
        selector=selectors.tagging_activity, chart={"kind": "stacked_bar"},
    ))
    register_panel(Panel(
        key="followups", title=_("每日跟进（跟进记录与聊天）"), section="activity", order=20, wide=True,
        description=_("每天写下的跟进记录和收发的聊天消息条数。"),
        selector=selectors.followups, chart={"kind": "line"},
    ))
    register_panel(Panel(
        key="customers_daily", title=_("每日新增与流失客户"), section="customers", order=10, wide=True,
        description=_("新增：当天添加、至今仍在跟进的客户；流失：当天删除了成员或被成员删除的客户。"),
        selector=selectors.customers_daily, chart={"kind": "bar"}, roles=CUSTOMER_ROLES,
    ))
    register_panel(Panel(
        key="customers_by_department", title=_("各部门新增与流失"), section="customers", order=20,
        description=_("所选日期内，按跟进成员所在部门统计。"),
        selector=selectors.customers_by_department, chart={"kind": "hbar"},
        roles=("enterprise_admin", "tag_admin", "hr", "manager"),
    ))
    register_panel(Panel(
        key="customers_by_employee", title=_("各成员新增与流失（前 15 名）"), section="customers", order=30,
        description=_("所选日期内新增客户最多的成员。"),
        selector=selectors.customers_by_employee, chart={"kind": "hbar"},
        roles=("enterprise_admin", "tag_admin", "hr", "manager"),
    ))
