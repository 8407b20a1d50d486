"""`seed_demo --customers N`: customers with followers, skewed taggings that respect single-choice
groups, personal tags only on the owners' customers, notes, chat, an audit sample; adds up to N."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db.models import Count, Exists, F, OuterRef

from customers.models import Customer, FollowRelation, Message, Note, PersonalTagging, TagEvent, Tagging
from tags.models import TagGroup

pytestmark = pytest.mark.django_db


def test_seed_builds_a_believable_portfolio_and_tops_up(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", customers=400)
    assert Customer.objects.count() == 400
    assert not Customer.objects.filter(follow_relations__isnull=True).exists()
    per_customer = Tagging.objects.count() / 400
    assert 6 <= per_customer <= 14
    # Skew: the most used tag is on far more customers than the least used.
    usage = sorted(Tagging.objects.values("tag").annotate(n=Count("id")).values_list("n", flat=True))
    assert usage[-1] >= 5 * usage[0]
    for group in TagGroup.objects.filter(single_choice=True):
        doubled = Tagging.objects.filter(tag__group=group).values("customer").annotate(n=Count("id")).filter(n__gt=1)
        assert not doubled.exists(), group.name
    # Personal tags only on customers their owner follows.
    assert PersonalTagging.objects.exists()
    stray = PersonalTagging.objects.exclude(
        customer__follow_relations__employee=F("personal_tag__owner")
    )
    assert not stray.exists()
    assert Note.objects.exists() and TagEvent.objects.exists()
    assert Message.objects.filter(content__contains="保养").exists()
    assert set(Message.objects.values_list("direction", flat=True)) == {"in", "out"}
    # Followers are mostly front-line staff.
    front = FollowRelation.objects.filter(employee__departments__name__in=["销售部", "售后部"]).count()
    assert front > FollowRelation.objects.count() / 2
    # In order: nobody tags, chats with or writes about a customer before that customer added them.
    def added_by(ref_employee, ref_time):
        return Exists(FollowRelation.objects.filter(
            customer_id=OuterRef("customer_id"), employee_id=OuterRef(ref_employee), added_at__lte=OuterRef(ref_time)))
    seeded = TagEvent.objects.filter(actor_label="seed_demo", actor_employee__isnull=False)
    assert seeded.exists()
    assert not seeded.exclude(added_by("actor_employee_id", "created_at")).exists()
    chat = Message.objects.filter(msgid__startswith="demo-")
    assert chat.exists() and not chat.exclude(added_by("employee_id", "sent_at")).exists()
    assert not Note.objects.exclude(added_by("author_id", "created_at")).exists()

    call_command("seed_demo", customers=450)
    assert Customer.objects.count() == 450
    call_command("seed_demo", customers=100)
    assert Customer.objects.count() == 450
    assert Customer.objects.values("external_userid").distinct().count() == 450
