"""Department tree services: order follows position, cycles refused, tree writes serialised."""

import threading
import time

import pytest
from django.db import connection, transaction

from org import services
from org.actors import SYSTEM, Actor
from org.models import Department
from tagportal.errors import Conflict, NotAllowed, ValidationFailed
from tagportal.locks import tree_lock
from tests.factories import DepartmentFactory, EmployeeFactory


def names(parent):
    return [d.name for d in Department.objects.get(pk=parent.pk).get_children()]


@pytest.mark.django_db
def test_new_department_goes_last_among_its_siblings():
    hq = services.department_create(actor=SYSTEM, name="总部")
    for name in ("华北区", "华东区", "华南区"):
        services.department_create(actor=SYSTEM, name=name, parent=hq)
    assert names(hq) == ["华北区", "华东区", "华南区"]
    assert [d.order for d in hq.get_children()] == [10, 20, 30]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("position", "expected"),
    [("left", ["丙", "甲", "乙"]), ("right", ["甲", "丙", "乙"]), ("first-child", None), ("last-child", None)],
)
def test_move_positions_and_order_renumbered(position, expected):
    hq = services.department_create(actor=SYSTEM, name="总部")
    a, b, c = (services.department_create(actor=SYSTEM, name=n, parent=hq) for n in ("甲", "乙", "丙"))
    moved = services.department_move(actor=SYSTEM, department=c, target=a, position=position)
    if expected is None:  # into 甲
        assert moved.parent_id == a.pk and names(hq) == ["甲", "乙"]
        assert [d.order for d in Department.objects.get(pk=hq.pk).get_children()] == [10, 20]
    else:
        assert names(hq) == expected
        assert [d.order for d in Department.objects.get(pk=hq.pk).get_children()] == [10, 20, 30]
    Department.objects.rebuild()  # rebuilding from `parent` + `order` gives the same tree
    if expected:
        assert names(hq) == expected


@pytest.mark.django_db
def test_move_under_itself_or_a_descendant_is_refused_and_changes_nothing():
    hq = services.department_create(actor=SYSTEM, name="总部")
    north = services.department_create(actor=SYSTEM, name="华北区", parent=hq)
    beijing = services.department_create(actor=SYSTEM, name="北京分公司", parent=north)
    sales = services.department_create(actor=SYSTEM, name="销售部", parent=beijing)
    before = list(Department.objects.order_by("pk").values_list("pk", "parent_id", "lft", "rght", "order"))
    for target, position in [(north, "last-child"), (beijing, "first-child"), (sales, "left"), (sales, "last-child")]:
        with pytest.raises(ValidationFailed) as exc:
            services.department_move(actor=SYSTEM, department=north, target=target, position=position)
        assert exc.value.code == "cycle"
    with pytest.raises(ValidationFailed):
        services.department_update(actor=SYSTEM, department=north, parent=sales)
    after = list(Department.objects.order_by("pk").values_list("pk", "parent_id", "lft", "rght", "order"))
    assert after == before


@pytest.mark.django_db
def test_unknown_position_is_refused():
    a, b = DepartmentFactory(), DepartmentFactory()
    with pytest.raises(ValidationFailed):
        services.department_move(actor=SYSTEM, department=a, target=b, position="inside")


@pytest.mark.django_db
def test_only_enterprise_admins_write_departments():
    hr = Actor(employee=EmployeeFactory(roles=["hr"]))
    with pytest.raises(NotAllowed):
        services.department_create(actor=hr, name="新部门")
    assert not Department.objects.exists()


@pytest.mark.django_db
def test_delete_refuses_departments_with_children_or_members():
    parent = DepartmentFactory(name="华北区")
    child = DepartmentFactory(name="北京分公司", parent=parent)
    EmployeeFactory(departments=[child])
    with pytest.raises(Conflict, match="下级部门"):
        services.department_delete(actor=SYSTEM, department=parent)
    with pytest.raises(Conflict, match="所属部门"):
        services.department_delete(actor=SYSTEM, department=child)
    assert Department.objects.count() == 2


@pytest.mark.django_db
def test_rebuild_repairs_corrupted_tree_fields():
    hq = services.department_create(actor=SYSTEM, name="总部")
    north = services.department_create(actor=SYSTEM, name="华北区", parent=hq)
    Department.objects.filter(pk=north.pk).update(lft=100, rght=1, level=7)
    assert services.department_tree_rebuild() == 2
    north.refresh_from_db()
    assert (north.lft, north.rght, north.level) == (2, 3, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tree_writes_wait_for_the_tree_lock():
    """A second writer blocks while another transaction holds the department tree lock."""
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    hq = services.department_create(actor=SYSTEM, name="总部")
    holding, waited = threading.Event(), {}

    def hold_lock():
        with transaction.atomic(), tree_lock("department"):
            holding.set()
            time.sleep(0.8)
        connection.close()

    def writer():
        holding.wait(5)
        start = time.monotonic()
        services.department_create(actor=SYSTEM, name="华北区", parent=hq)
        waited["seconds"] = time.monotonic() - start
        connection.close()

    threads = [threading.Thread(target=hold_lock), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert waited["seconds"] >= 0.5
    assert names(hq) == ["华北区"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_moves_leave_a_valid_tree():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    hq = services.department_create(actor=SYSTEM, name="总部")
    regions = [services.department_create(actor=SYSTEM, name=f"区{i}", parent=hq) for i in range(4)]
    branches = [services.department_create(actor=SYSTEM, name=f"分{i}", parent=regions[i % 4]) for i in range(8)]
    errors = []

    def mover(offset):
        try:
            for i in range(8):
                services.department_move(
                    actor=SYSTEM, department=branches[(i + offset) % 8], target=regions[(i + offset + 1) % 4],
                    position="last-child",
                )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=mover, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    snapshot = list(Department.objects.order_by("pk").values_list("pk", "lft", "rght", "level", "tree_id"))
    Department.objects.rebuild()
    assert list(Department.objects.order_by("pk").values_list("pk", "lft", "rght", "level", "tree_id")) == snapshot
