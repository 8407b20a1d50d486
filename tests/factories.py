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
