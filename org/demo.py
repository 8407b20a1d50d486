"""Demo data of the org app, called by `manage.py seed_demo`: a believable company.

总部 (head office, with 人力资源部 and 市场部) and three regions, each with branches; every
branch has 销售部 (sales) and 售后部 (after-sales). A few dozen employees hold each role.
Every demo account's password is `DEMO_PASSWORD`. Safe to run twice: departments are found
by `external_id`, employees by `userid`; what exists is left alone.

Userids other apps' demo data may rely on: `admin`, `tagadmin`, `hr`, `manager_<branch>`
(bj, tj, sh, hz, gz), `manager_north` (manages the sales departments of 北京 and 天津,
listed explicitly), staff such as `zhangwei` (北京 销售部); `liuyang` (北京 销售部) has departed.
"""

from __future__ import annotations

import os

from django.db import transaction

from .actors import SYSTEM
from .models import Department, Employee, EmployeeStatus, Role
from .services import department_create, employee_create

DEMO_PASSWORD = "tagportal"

# (external_id, name, parent external_id)
DEPARTMENTS = [
    ("1", "总部", None),
    ("2", "人力资源部", "1"),
    ("3", "市场部", "1"),
    ("10", "华北区", "1"),
    ("11", "北京分公司", "10"),
    ("12", "天津分公司", "10"),
    ("20", "华东区", "1"),
    ("21", "上海分公司", "20"),
    ("22", "杭州分公司", "20"),
    ("30", "华南区", "1"),
    ("31", "广州分公司", "30"),
]
BRANCHES = {"bj": "11", "tj": "12", "sh": "21", "hz": "22", "gz": "31"}
SALES, SERVICE = "01", "02"  # suffixes: branch 11 → 销售部 1101, 售后部 1102


def _branch_departments() -> list[tuple[str, str, str]]:
    rows = []
    for branch in BRANCHES.values():
        rows.append((branch + SALES, "销售部", branch))
        rows.append((branch + SERVICE, "售后部", branch))
    return rows


# userid, name, roles, departments (external ids), managed departments (external ids), status
EMPLOYEES = [
    ("admin", "系统管理员", [Role.ENTERPRISE_ADMIN], ["1"], [], "active"),
    ("tagadmin", "陈静", [Role.TAG_ADMIN], ["3"], [], "active"),
    ("hr", "王芳", [Role.HR], ["2"], [], "active"),
    ("hr_li", "李娜", [Role.HR], ["2"], [], "active"),
    ("manager_north", "赵强", [Role.MANAGER], ["10"], ["1101", "1201"], "active"),
    ("manager_bj", "孙伟", [Role.MANAGER], ["1101"], ["1101", "1102"], "active"),
    ("zhangwei", "张伟", [Role.STAFF], ["1101"], [], "active"),
    ("wangjing", "王静", [Role.STAFF], ["1101"], [], "active"),
    ("liuyang", "刘洋", [Role.STAFF], ["1101"], [], "departed"),
    ("zhaomin", "赵敏", [Role.STAFF], ["1102"], [], "active"),
    ("manager_tj", "周杰", [Role.MANAGER], ["1201"], ["1201", "1202"], "active"),
    ("wulei", "吴磊", [Role.STAFF], ["1201"], [], "active"),
    ("zhenghui", "郑慧", [Role.STAFF], ["1201"], [], "active"),
    ("fengtao", "冯涛", [Role.STAFF], ["1202"], [], "active"),
    ("manager_sh", "钱丽", [Role.MANAGER], ["2101"], ["2101", "2102"], "active"),
    ("chenchen", "陈晨", [Role.STAFF], ["2101"], [], "active"),
    ("yangfan", "杨帆", [Role.STAFF], ["2101"], [], "active"),
    ("huangli", "黄丽", [Role.STAFF], ["2101"], [], "active"),
    ("xuming", "徐明", [Role.STAFF], ["2102"], [], "active"),
    ("manager_hz", "何平", [Role.MANAGER], ["2201"], ["2201", "2202"], "active"),
    ("linfeng", "林峰", [Role.STAFF], ["2201"], [], "active"),
    ("luoxue", "罗雪", [Role.STAFF], ["2201"], [], "active"),
    ("gaoyan", "高岩", [Role.STAFF], ["2202"], [], "active"),
    ("manager_gz", "梁辉", [Role.MANAGER], ["3101"], ["3101", "3102"], "active"),
    ("songjia", "宋佳", [Role.STAFF], ["3101"], [], "active"),
    ("tangning", "唐宁", [Role.STAFF], ["3101"], [], "active"),
    ("hanmei", "韩梅", [Role.STAFF], ["3101"], [], "active"),
    ("caoyu", "曹雨", [Role.STAFF], ["3102"], [], "active"),
    ("dengchao", "邓超", [Role.STAFF], ["3102"], [], "active"),
    ("xiaoyu", "萧雨", [Role.STAFF, Role.TAG_ADMIN], ["3"], [], "active"),
]


@transaction.atomic
def seed(*, stdout=None, **options) -> None:
    """Create the departments and employees that are missing; print the demo logins."""
    by_ext = {d.external_id: d for d in Department.objects.filter(external_id__isnull=False)}
    created_deps = 0
    for ext, name, parent_ext in DEPARTMENTS + _branch_departments():
        if ext in by_ext:
            continue
        by_ext[ext] = department_create(actor=SYSTEM, name=name, parent=by_ext.get(parent_ext), external_id=ext)
        created_deps += 1

    existing = set(Employee.objects.values_list("userid", flat=True))
    created_emps = 0
    for userid, name, roles, deps, managed, status in EMPLOYEES:
        if userid in existing:
            continue
        employee = employee_create(
            actor=SYSTEM,
            userid=userid,
            name=name,
            roles=roles,
            departments=[by_ext[e] for e in deps],
            managed_departments=[by_ext[e] for e in managed],
            password=DEMO_PASSWORD,
            status=EmployeeStatus(status),
        )
        if userid == "admin":
            employee.is_superuser = True
            employee.save(update_fields=["is_superuser"])
        created_emps += 1

    if stdout is not None:
        stdout.write(f"org: {created_deps} departments and {created_emps} employees created.")


def print_logins(stdout) -> None:
    """The demo accounts, printed at the end of `seed_demo`."""
    base = os.environ.get("TAGPORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
    stdout.write("")
    stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}) at {base}/login/")
    for userid, role in [
        ("admin", "企业管理员 enterprise admin"),
        ("tagadmin", "标签管理员 tag admin"),
        ("hr", "人事 HR"),
        ("manager_bj", "销售经理 sales manager, 北京分公司"),
        ("manager_north", "销售经理 sales manager, 华北区 (北京/天津 销售部)"),
        ("zhangwei", "员工 staff, 北京分公司 销售部"),
    ]:
        stdout.write(f"  {userid:<14} {role}")
    stdout.write("")
