"""factory_boy factories shared by every test module."""

import factory
from django.contrib.auth.models import Group

from org.models import ApiClient, Department, Employee


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"部门{n}")
    parent = None


class EmployeeFactory(factory.django.DjangoModelFactory):
    """`EmployeeFactory(roles=["manager"], departments=[d], managed_departments=[d])`."""

    class Meta:
        model = Employee
        skip_postgeneration_save = True

    userid = factory.Sequence(lambda n: f"user{n}")
    name = factory.Sequence(lambda n: f"员工{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-1234")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create:
            for role in extracted or ["staff"]:
                self.groups.add(Group.objects.get_or_create(name=role)[0])
            self.save()

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        if create and extracted:
            self.departments.set(extracted)

    @factory.post_generation
    def managed_departments(self, create, extracted, **kwargs):
        if create and extracted:
            self.managed_departments.set(extracted)


def make_api_client(name: str = "crm", read_only: bool = False) -> tuple[ApiClient, str]:
    """An API client and its clear-text key."""
    client = ApiClient(name=name, read_only=read_only)
    key = client.set_new_key()
    client.save()
    return client, key


# ---------------------------------------------------------------- customers (added by CUSTOMERS)


class CustomerFactory(factory.django.DjangoModelFactory):
    """`CustomerFactory(followers=[emp, ...])` adds active follow relations."""

    class Meta:
        model = "customers.Customer"
        skip_postgeneration_save = True

    external_userid = factory.Sequence(lambda n: f"wm{n:08d}")
    name = factory.Sequence(lambda n: f"客户{n}")

    @factory.post_generation
    def followers(self, create, extracted, **kwargs):
        from customers.models import FollowRelation

        for employee in extracted or ():
            FollowRelation.objects.create(customer=self, employee=employee)


def make_tag_group(name: str, *, parent=None, departments=(), locked=False, single_choice=False, tags=()):
    """A tag group (mptt node saved one by one) with `tags` created in it; returns (group, [tags])."""
    from tags.models import Tag, TagGroup

    group = TagGroup.objects.create(name=name, parent=parent, locked=locked, single_choice=single_choice)
    if departments:
        group.departments.set(departments)
    return group, [Tag.objects.create(group=group, name=t, order=i) for i, t in enumerate(tags)]
