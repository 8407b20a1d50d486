"""Role groups keep their permissions, also after a transactional test flushes the database."""

import pytest
from django.contrib.auth.models import Group

from org.models import Role


def _perms(role: str) -> set[str]:
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_flushes_the_database():
    assert Group.objects.filter(name=Role.TAG_ADMIN).exists()


@pytest.mark.django_db(transaction=True)
def test_role_permissions_are_complete_after_a_flush():
    # pytest-django runs transactional tests after the others, in file order: this one follows
    # the flush at the end of the test above.
    assert {"change_tag", "change_taggroup", "change_customer"} <= _perms(Role.TAG_ADMIN)
    assert {"add_transfer", "change_employee"} <= _perms(Role.HR)
    assert "change_tag" not in _perms(Role.STAFF)
