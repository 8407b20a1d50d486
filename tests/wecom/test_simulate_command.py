"""`manage.py wecom_simulate`: a newcomer watches a customer arrive through a channel code, with a
running portal (live server) and the simulator, without a real corp."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, FollowRelation, RelationStatus
from tests.factories import DepartmentFactory, EmployeeFactory, make_tag_group
from wecom.simulator.load import load_portal

pytestmark = pytest.mark.django_db(transaction=True)


def simulate(*args) -> str:
    out = io.StringIO()
    call_command("wecom_simulate", *args, stdout=out)
    return out.getvalue()


def test_add_customer_then_the_customer_deletes_the_employee(wecom_fake, live_server):
    EmployeeFactory(userid="zhangwei", name="张伟")
    wecom_fake.callback_url = f"{live_server.url}/wecom/callback/"
    output = simulate("add-customer", "--simulator", wecom_fake.url, "--employee", "zhangwei",
                      "--state", "expo2026", "--name", "王女士", "--remark", "展会")
    assert '"portal_status": 200' in output
    customer = Customer.objects.get(name="王女士")
    relation = FollowRelation.objects.get(customer=customer)
    assert (relation.employee.userid, relation.state, relation.remark) == ("zhangwei", "expo2026", "展会")

    simulate("lose-customer", "--simulator", wecom_fake.url, "--employee", "zhangwei",
             "--external-userid", customer.external_userid)
    relation.refresh_from_db()
    assert relation.status == RelationStatus.LOST


def test_unknown_relation_and_unreachable_simulator_are_errors(wecom_fake, live_server):
    wecom_fake.callback_url = f"{live_server.url}/wecom/callback/"
    with pytest.raises(CommandError, match="no such follow relation"):
        simulate("del-customer", "--simulator", wecom_fake.url, "--employee", "x", "--external-userid", "wmNONE")
    with pytest.raises(CommandError, match="does not answer"):
        simulate("state", "--simulator", "http://127.0.0.1:9")


def test_serve_loads_the_portal_org_and_mapped_tags(wecom_fake):
    sales = DepartmentFactory(name="销售部", external_id="12")
    EmployeeFactory(userid="zhangwei", name="张伟", departments=[sales])
    EmployeeFactory(userid="gone", status="departed")
    _group, (vip, _other) = make_tag_group("客户等级", tags=["VIP客户", "普通客户"])
    vip.external_id = "etVIP"
    vip.save(update_fields=["external_id"])
    counts = load_portal(wecom_fake)
    assert counts["users"] == 1 and counts["tags"] == 1
    assert wecom_fake.state.users["zhangwei"].department == [12]
    assert wecom_fake.state.find_tag("etVIP")[1].name == "VIP客户"
