"""Who a request acts as: `employee=<userid>` (query or JSON body) narrows an API client to that
employee's rights; a browser session acts as its logged-in employee."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.request import Request

from org.actors import Actor
from org.models import ApiClient, Employee
from tagportal.errors import NotAllowed, ValidationFailed


def named_employee_userid(request: Request) -> str | None:
    userid = request.query_params.get("employee")
    if userid is None and isinstance(request.data, dict):
        userid = request.data.get("employee")
    return userid or None


def request_actor(request: Request) -> Actor:
    """The `Actor` of an authenticated API request (cached on the request)."""
    cached = getattr(request, "_tagportal_actor", None)
    if cached is not None:
        return cached
    userid = named_employee_userid(request)
    if isinstance(userid, str) and "\x00" in userid:
        raise ValidationFailed(_("employee 参数不能包含 NUL 字符。"), details={"employee": "NUL character"})
    if isinstance(request.auth, ApiClient):
        client = request.auth
        employee = None
        if userid is not None:
            employee = Employee.objects.filter(userid=userid).first()
            if employee is None:
                raise ValidationFailed(_("未知员工“%(userid)s”。") % {"userid": userid}, details={"employee": userid})
            if employee.is_departed:
                raise NotAllowed(_("员工“%(userid)s”已离职，不能再操作。") % {"userid": userid}, code="departed")
        actor = Actor(employee=employee, api_client=client)
    else:
        employee = request.user
        if userid is not None and userid != employee.userid:
            raise NotAllowed(_("已登录的员工只能以自己的身份操作。"), details={"employee": userid})
        actor = Actor(employee=employee)
    request._tagportal_actor = actor
    return actor
