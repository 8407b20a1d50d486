"""The department tree rebuild task, run by a real Celery worker through Redis."""

import time

import pytest

from org import tasks
from org.models import Department
from tests.factories import DepartmentFactory


@pytest.mark.worker
def test_rebuild_task_runs_on_a_real_worker_and_repairs_the_tree(celery_worker):
    hq = DepartmentFactory(name="总部")
    north = DepartmentFactory(name="华北区", parent=hq)
    beijing = DepartmentFactory(name="北京分公司", parent=north)
    good = {d.pk: (d.lft, d.rght, d.level) for d in Department.objects.all()}
    Department.objects.filter(pk=beijing.pk).update(lft=50, rght=2, level=9)  # a corrupted tree, as after a bad import
    Department.objects.filter(pk=hq.pk).update(rght=3)

    tasks.department_tree_rebuild.delay()

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = {d.pk: (d.lft, d.rght, d.level) for d in Department.objects.all()}
        if now == good:
            break
        time.sleep(0.2)
    assert now == good, "the worker did not rebuild the tree"
    assert celery_worker.proc.poll() is None
    # It was the worker, not an eager call in this process, that ran it.
    deadline = time.monotonic() + 5
    while "department_tree_rebuild" not in celery_worker.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the task never reached the worker's log"
        time.sleep(0.2)
