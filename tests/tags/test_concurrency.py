"""Several admins editing the tree at once (PostgreSQL): the advisory lock keeps mptt consistent."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections

from org.actors import Actor
from tagportal.errors import DomainError
from tags import services
from tags.models import TagGroup
from tests.factories import make_api_client

pytestmark = [
    pytest.mark.postgres,
    # Decided before the database is set up, so SQLite runs skip without a transactional flush.
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (advisory locks, real concurrent "
                       "writers)"),
    pytest.mark.django_db(transaction=True),
]

THREADS = 6
STEPS = 25


def tree_fields():
    return sorted(TagGroup.objects.values_list("pk", "parent_id", "lft", "rght", "level", "tree_id"))


def _worker(seed: int, actor: Actor, errors: list) -> None:
    rng = random.Random(seed)
    try:
        for step in range(STEPS):
            groups = list(TagGroup.objects.values_list("pk", flat=True))
            try:
                if not groups or rng.random() < 0.45:
                    parent = TagGroup.objects.filter(pk=rng.choice(groups)).first() if groups and rng.random() < 0.7 \
                        else None
                    services.tag_group_create(actor=actor, name=f"t{seed}-{step}", parent=parent,
                                              order=rng.randint(0, 5) * 10)
                elif rng.random() < 0.2:
                    group = TagGroup.objects.filter(pk=rng.choice(groups)).first()
                    if group is not None:
                        services.tag_create(actor=actor, group=group, name=f"tag{seed}-{step}")
                elif rng.random() < 0.85:
                    group = TagGroup.objects.filter(pk=rng.choice(groups)).first()
                    target = TagGroup.objects.filter(pk=rng.choice(groups)).first() if rng.random() < 0.8 else None
                    if group is not None:
                        services.tag_group_move(actor=actor, group=group, parent=target,
                                                order=rng.randint(0, 5) * 10)
                else:
                    group = TagGroup.objects.filter(pk=rng.choice(groups)).first()
                    if group is not None:
                        services.tag_group_delete(actor=actor, group=group)
            except DomainError:
                pass  # too deep, cycle, vanished under us: refused cleanly, as a user would see it
    except Exception as exc:  # noqa: BLE001 - reported to the main thread
        errors.append(repr(exc))
    finally:
        connections.close_all()


def test_concurrent_creates_and_moves_leave_a_valid_tree():
    actor = Actor(api_client=make_api_client("crm")[0])
    for i in range(4):
        services.tag_group_create(actor=actor, name=f"root{i}", order=i * 1000)
    errors: list = []
    threads = [threading.Thread(target=_worker, args=(seed, actor, errors)) for seed in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert TagGroup.objects.count() > 4
    before = tree_fields()
    TagGroup.objects.rebuild()
    assert tree_fields() == before, "rebuild() changed lft/rght/level/tree_id: the tree was corrupt"
    assert max(level for *_x, level, _t in before) <= 2
    # Every parent relation agrees with the nested sets.
    for group in TagGroup.objects.all():
        if group.parent_id:
            parent = TagGroup.objects.get(pk=group.parent_id)
            assert parent.lft < group.lft < group.rght < parent.rght
            assert group.level == parent.level + 1
            assert group.tree_id == parent.tree_id
