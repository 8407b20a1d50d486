"""The permission matrix, generated from the URL conf: every route of the API and of the admin (the
portal), called by everyone who must be refused — no credentials, a revoked key, a read-only key
writing, a departed employee's session, a staff member and a manager acting for objects outside their
scope. Expected: 401/403/404 (the portal: a redirect to the login page or away from the object), never
a 5xx, and never another scope's data in the body (every object outside the callers' scope carries the
marker `ZX91` in what a response would show).

A route without an entry in `API_ROUTES`, `PAGE_ROUTES` or `ADMIN_MODELS` fails
`test_every_route_has_an_entry`: adding a route means saying who may call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from customers.models import Message, Note, PersonalTagging, Tagging
from org.actors import Actor
from tests.conftest import bearer_client
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_api_client, make_tag_group

pytestmark = pytest.mark.django_db
MARK = "ZX91"


# ================================================================ the entry table


@dataclass(frozen=True)
class Entry:
    """Who may call a route.

    kind "list": for the caller's own scope (lists, forms, new objects): staff and managers get an answer,
        never another scope's data in it.
    kind "object": one object (`obj`, filled into the route's parameters) outside the staff member's and the
        manager's scope: 403/404 (the portal: 403/404 or a redirect away from it).
    kind "public": for everyone by design (login, health, docs, the WeCom callback, setlang): still no leak.
    `read`: "public" when reading the object is for every employee (the org chart) — writes stay refused.
    `methods`: only these (else every method the route serves).
    """

    kind: str
    obj: str | None = None
    read: str = ""
    methods: tuple[str, ...] = ()
    anonymous: tuple[int, ...] = field(default=())  # overrides what no credentials must get


L, P = Entry("list"), Entry("public")
DENY = Entry("object")  # a page only others may open (staff and managers: 403/404 or sent away)


def O(obj: str, **kw) -> Entry:  # noqa: E743, N802 - reads as a table
    return Entry("object", obj=obj, **kw)


# API routes, written as the URL conf spells them with `{param}` for each parameter.
API_ROUTES: dict[str, Entry] = {
    "/api/v1/departments/": L,
    "/api/v1/departments/{pk}/": O("department", read="public"),
    "/api/v1/employees/": L,
    "/api/v1/employees/{pk}/": O("employee", read="public"),
    "/api/v1/tag-groups/": L,
    "/api/v1/tag-groups/{pk}/": O("tag_group"),
    "/api/v1/tags/": L,
    "/api/v1/tags/{pk}/": O("tag"),
    "/api/v1/tags/{pk}/merge/": O("tag"),
    "/api/v1/personal-tags/": L,
    "/api/v1/personal-tags/{pk}/": O("personal_tag"),
    "/api/v1/tagging/bulk/": L,
    "/api/v1/customers/": L,
    "/api/v1/customers/{pk}/": O("customer"),
    "/api/v1/customers/{pk}/messages/": O("customer"),
    "/api/v1/customers/{pk}/notes/": O("customer"),
    "/api/v1/customers/{pk}/tags/": O("customer"),
    "/api/v1/transfers/": L,
    "/api/v1/transfers/preview/": L,
    "/api/v1/transfers/{pk}/": O("transfer"),
    "/api/v1/transfers/{pk}/items/": O("transfer"),
    "/api/v1/jobs/": L,
    "/api/v1/jobs/{pk}/": O("job"),
    "/api/v1/jobs/{pk}/cancel/": O("job"),
    "/api/v1/jobs/{pk}/undo/": O("job"),
    # channels (渠道活码)
    "/api/v1/channel-codes/": L,
    "/api/v1/channel-codes/{pk}/": O("channel_code"),
    "/api/v1/channel-codes/{pk}/qr.png": O("channel_code"),
    "/api/v1/channel-codes/{pk}/qr.svg": O("channel_code"),
    "/api/v1/channel-codes/{pk}/receivers/": O("channel_code"),
    "/api/v1/channel-codes/{pk}/stats/": O("channel_code"),
    # rules (智能标签) and message ingestion
    "/api/v1/keyword-rules/": L,
    "/api/v1/keyword-rules/test/": L,
    "/api/v1/keyword-rules/{pk}/": O("keyword_rule"),
    "/api/v1/keyword-rules/{pk}/backtest/": O("keyword_rule"),
    "/api/v1/keyword-rules/{pk}/backtest/apply/": O("keyword_rule"),
    "/api/v1/keyword-rules/{pk}/hits/": O("keyword_rule"),
    "/api/v1/keyword-rules/{pk}/undo/": O("keyword_rule"),
    "/api/v1/messages/": L,
    # insights (数据看板): numbers of the caller's own scope
    "/api/v1/insights/": L,
    "/api/v1/insights/{panel}/": L,
    "/api/schema/": P,
    "/api/docs/": P,
    "/api/": P,  # unknown API paths: 404 in the error shape
}

# Pages outside the model admins (the portal's own, the admin site's own, health, i18n, the mobile sidebar).
PAGE_ROUTES: dict[str, Entry] = {
    "/health/": P,
    "/health/workers/": P,
    "/i18n/setlang/": P,
    "/m/": L,
    "/m/customers/{external_userid}/": O("customer_external"),
    "/login-lockouts/": L,
    "/": L,  # the front page
    "/login/": P,
    "/logout/": P,
    "/password_change/": L,
    "/password_change/done/": L,
    "/autocomplete/": L,
    "/jsi18n/": P,
    "/r/{content_type_id}/{object_id}/": O("customer_shortcut"),
    "/{app_label}/": L,  # an app's index
    "/{url}": P,  # the admin's catch-all (login redirect or 404)
    "/tags/taggroup/health/": L,
    "/tags/taggroup/export/": L,
    "/tags/taggroup/import/": L,
    "/customers/customer/export.csv": L,
    "/customers/customer/export.xlsx": L,
    "/customers/customer/count.json": L,
    "/customers/job/{object_id}/cancel/": O("job"),
    "/customers/job/{object_id}/undo/": O("job"),
    "/customers/transfer/start/{employee_id}/{mode}/": O("departed_employee"),
    "/customers/transfer/departed/{employee_id}/": O("employee"),
    "/customers/transfer/onjob/{employee_id}/": O("employee"),
    "/customers/transfer/pending/": L,
    "/c/{state}/": P,  # a channel code's public landing page (its QR); filled with an unknown state
    "/wecom/callback/": P,  # WeCom's callback: signature-checked, 403 for anything else
    "/wecom/oauth/": P,  # WeCom's OAuth back to the sidebar: logs in only with WeCom's code
    "/insights/snapshot/": L,
    "/insights/snapshot/refresh/": L,
    "/insights/snapshot/{key}.csv": L,
    "/channels/channelcode/{object_id}/qr.{kind}": O("channel_code"),
    "/channels/channelcode/{object_id}/stats.csv": O("channel_code"),
    "/rules/keywordrule/backtest/{job_id}/": O("job"),
    "/rules/keywordrule/backtest/{job_id}/apply/": O("job"),
    "/rules/keywordrule/{object_id}/backtest/": O("keyword_rule"),
    "/rules/keywordrule/{object_id}/edit/": O("keyword_rule"),
    "/rules/keywordrule/{object_id}/undo/": O("keyword_rule"),
    # 企业微信连接 (the WeCom status page): enterprise admins only
    "/wecom/outboxcursor/": DENY,
    "/wecom/outboxcursor/pull/": DENY,
    "/wecom/outboxcursor/outbox/retry/": DENY,
    "/wecom/outboxcursor/events/{event_id}/retry/": DENY,
}

# Model admins: each brings changelist, add, and per object history/delete/change/(redirect).
# Value: the world object whose id fills `{object_id}` (one outside the callers' scope).
ADMIN_MODELS: dict[str, str] = {
    "org/department": "department",
    "org/employee": "employee",
    "org/apiclient": "api_client",
    "tags/taggroup": "tag_group",
    "tags/tag": "tag",
    "tags/personaltag": "personal_tag",
    "customers/customer": "customer",
    "customers/job": "job",
    "customers/transfer": "transfer",
    "channels/channelcode": "channel_code",
    "rules/keywordrule": "keyword_rule",
}
PUBLIC_READ_MODELS = {"org/department", "org/employee"}  # the org chart and address book: every employee reads
ADMIN_OBJECT_SUFFIXES = ("{object_id}/history/", "{object_id}/delete/", "{object_id}/change/", "{object_id}/")


# ================================================================ routes from the URL conf


def route_key(pattern: str) -> str:
    """`api/v1/^customers/(?P<pk>[0-9]+)/$` → `/api/v1/customers/{pk}/`; `<path:object_id>` → `{object_id}`."""
    key = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    key = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", key)
    key = re.sub(r"\^(\w+)\|[\w|]+\)", "", key)
    key = key.replace("^", "").replace("$", "").replace("(?P<url>.*)", "{url}").replace(".*", "")
    return "/" + key.lstrip("/")


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    allowed = [m.upper() for m in getattr(view_class, "http_method_names", ["get", "post"]) if m != "options"]
    if actions:
        return sorted(m.upper() for m in actions if m.upper() in allowed and m != "head")
    if view_class is not None and getattr(view_class, "__module__", "").startswith(("tagportal", "customers",
                                                                                   "org", "tags", "insights",
                                                                                   "channels", "rules", "wecom")):
        return sorted(m.upper() for m in ("get", "post", "patch", "put", "delete")
                      if hasattr(view_class, m) and m.upper() in allowed)
    return ["GET", "POST"]


def all_routes() -> list[tuple[str, list[str]]]:
    out = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                out.append((route_key(prefix + str(p.pattern)), _methods(p.callback)))

    walk(get_resolver().url_patterns)
    return [(k, m) for k, m in out if not k.startswith("/static/")]


def entry_for(key: str) -> Entry | None:
    if key in API_ROUTES:
        return API_ROUTES[key]
    if key in PAGE_ROUTES:
        return PAGE_ROUTES[key]
    for model, obj in ADMIN_MODELS.items():
        base = f"/{model}/"
        if key in (base, base + "add/"):
            return L
        if key in {base + suffix for suffix in ADMIN_OBJECT_SUFFIXES}:
            read_only = key.endswith(("/history/", "/{object_id}/"))  # pages that only show or redirect
            return O(obj, read="public" if model in PUBLIC_READ_MODELS else "", methods=("GET",) if read_only else ())
    return None


ROUTES = all_routes()


def test_every_route_has_an_entry():
    missing = sorted({key for key, _ in ROUTES if entry_for(key) is None})
    assert not missing, (
        "routes without an entry in the permission matrix (tests/prod/test_permission_matrix.py: "
        f"API_ROUTES, PAGE_ROUTES or ADMIN_MODELS): {missing}"
    )


def test_the_matrix_has_no_stale_entries():
    keys = {key for key, _ in ROUTES}
    stale = sorted(k for k in [*API_ROUTES, *PAGE_ROUTES] if k not in keys)
    stale += sorted(m for m in ADMIN_MODELS if f"/{m}/" not in keys)
    assert not stale, f"entries for routes that no longer exist: {stale}"


# ================================================================ the world: two scopes


@pytest.fixture
def world(db, settings):
    """Department A (a staff member, their manager) and department B with everything secret (`ZX91`)."""
    from customers.jobs import bulk_tagging_start
    from customers.transfers import transfer_start
    from tags.services import personal_tag_create

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.API_THROTTLE_RATE = None
    w = {}
    dept_a, dept_b = DepartmentFactory(name="甲部门"), DepartmentFactory(name="乙部门")
    w["staff"] = EmployeeFactory(userid="staff_a", name="甲员工", roles=["staff"], departments=[dept_a])
    w["manager"] = EmployeeFactory(userid="manager_a", name="甲经理", roles=["manager"], departments=[dept_a],
                                   managed_departments=[dept_a])
    staff_b = EmployeeFactory(userid="staff_b", name="乙员工", roles=["staff"], departments=[dept_b])
    leaving_b = EmployeeFactory(userid="leaving_b", name="乙离职", roles=["staff"], departments=[dept_b])
    admin_b = EmployeeFactory(userid="admin_b", name="乙管理员", roles=["enterprise_admin"], departments=[dept_b])
    w["departed"] = EmployeeFactory(userid="gone_a", name="甲已离职", roles=["staff"], departments=[dept_a])
    CustomerFactory(name="甲的客户", followers=[w["staff"]])

    group, (tag,) = make_tag_group(f"{MARK}机密组", departments=[dept_b], tags=[f"{MARK}机密标签"])
    secret = CustomerFactory(name=f"{MARK}机密客户", external_userid=f"wm{MARK}secret", followers=[staff_b, leaving_b])
    Tagging.objects.create(customer=secret, tag=tag)
    personal = personal_tag_create(actor=Actor(employee=staff_b), name=f"{MARK}私人标签")
    PersonalTagging.objects.create(customer=secret, personal_tag=personal)
    Note.objects.create(customer=secret, author=staff_b, text=f"{MARK}备注")
    Message.objects.create(msgid=f"{MARK}-1", customer=secret, employee=staff_b, direction="in",
                           content=f"{MARK}消息")
    job = bulk_tagging_start(actor=Actor(employee=staff_b), add=[tag.pk], source="bulk",
                             filter_params={"q": f"{MARK}机密"})
    transfer = transfer_start(actor=Actor(employee=admin_b), from_employee=leaving_b, to_employees=[staff_b])
    api_client_b, _ = make_api_client(f"{MARK}-client")
    from channels.models import ChannelCode
    from insights.registry import panels_for
    from rules.models import KeywordRule

    code = ChannelCode.objects.create(name=f"{MARK}渠道", state="zx91-secret", department=dept_b, owner=staff_b,
                                      description=f"{MARK}说明")
    code.employees.set([staff_b])
    code.tags.set([tag])
    rule = KeywordRule.objects.create(name=f"{MARK}规则", keywords=[f"{MARK}关键词"], directions=["in"],
                                      created_by=admin_b)
    rule.tags.set([tag])

    from django.contrib.contenttypes.models import ContentType

    w["objects"] = {
        "department": dept_b.pk, "employee": staff_b.pk, "departed_employee": leaving_b.pk,
        "tag_group": group.pk, "tag": tag.pk, "personal_tag": personal.pk, "customer": secret.pk,
        "customer_external": secret.external_userid, "job": job.pk, "transfer": transfer.pk,
        "api_client": api_client_b.pk,
        "customer_shortcut": (ContentType.objects.get_for_model(secret).pk, secret.pk),
        "channel_code": code.pk, "keyword_rule": rule.pk,
    }
    # route parameters that are not the object's id
    w["params"] = {"mode": "departed", "app_label": "customers", "url": "no/such/page/", "kind": "png",
                   "state": "no-such-state", "job_id": job.pk,
                   "panel": panels_for(None)[0].key, "key": panels_for(None)[0].key}
    w["departed"].status = "departed"
    w["departed"].is_active = False
    w["departed"].save()
    w["write_key"] = make_api_client("crm")[1]
    w["read_key"] = make_api_client("bi", read_only=True)[1]
    revoked, w["revoked_key"] = make_api_client("old")
    from django.utils import timezone

    revoked.revoked_at = timezone.now()
    revoked.save()
    return w


def fill(key: str, obj: str | None, world) -> str:
    """The route with its parameters: named ones from `world["params"]`, the rest the object's id."""
    url = re.sub(r"\{(\w+)\}", lambda m: str(world["params"].get(m.group(1), m.group(0))), key)
    value = world["objects"][obj] if obj else 1
    parts = iter(value) if isinstance(value, tuple) else None
    return re.sub(r"\{[^}]+\}", lambda m: str(next(parts)) if parts else str(value), url)


def call(client, method: str, url: str, employee: str | None = None):
    if employee:
        url += ("&" if "?" in url else "?") + f"employee={employee}"
    if method in ("GET", "HEAD", "DELETE"):
        return client.generic(method, url)
    return client.generic(method, url, "{}", content_type="application/json")


def assert_no_leak(response, what):
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert MARK.encode() not in body, (what, response.status_code, body[:400])


def _is_api(key: str) -> bool:
    return key.startswith("/api/")


API_CASES = [(k, m) for k, methods in ROUTES if _is_api(k) and entry_for(k) for m in methods]
PAGE_CASES = [(k, m) for k, methods in ROUTES if not _is_api(k) and entry_for(k) for m in methods
              if not entry_for(k).methods or m in entry_for(k).methods]


def _login(employee) -> Client:
    client = Client()
    client.force_login(employee)
    return client


def _session_for(world, who):
    if who == "departed":
        client = Client()
        client.force_login(world["departed"])  # logged in before: the session outlives nothing
        return client
    return _login(world[who])


# ================================================================ the API


@pytest.mark.parametrize("key, method", API_CASES, ids=[f"{m} {k}" for k, m in API_CASES])
def test_api_route_refuses_whoever_must_be_refused(world, key, method):
    entry = entry_for(key)
    url = fill(key, entry.obj, world)
    what = (method, url)
    public = entry.kind == "public"
    writes = method not in ("GET", "HEAD")

    # no credentials, a revoked key, a departed employee's session: 401 (403 for a dead session)
    for label, client, expected in (
        ("anonymous", Client(), entry.anonymous or (401,)),
        ("revoked key", bearer_client(world["revoked_key"]), (401,)),
        ("departed session", _session_for(world, "departed"), (401, 403)),
    ):
        response = call(client, method, url)
        assert_no_leak(response, (label, *what))
        if not public:
            assert response.status_code in expected, (label, *what, response.status_code, response.content[:300])

    # a read-only key never writes
    response = call(bearer_client(world["read_key"]), method, url)
    assert response.status_code < 500, (what, response.content[:300])
    if writes and not public:
        assert response.status_code == 403, ("read-only key", *what, response.status_code, response.content[:300])

    # staff (session) and a manager (a write key acting for them): nothing of department B
    for label, client, employee in (
        ("staff session", _login(world["staff"]), None),
        ("manager via key", bearer_client(world["write_key"]), "manager_a"),
    ):
        response = call(client, method, url, employee)
        assert response.status_code < 500, (label, *what, response.content[:300])
        assert_no_leak(response, (label, *what))
        if entry.kind == "object" and not (entry.read == "public" and not writes):
            assert response.status_code in (403, 404), (label, *what, response.status_code, response.content[:300])


# ================================================================ the portal (admin) and other pages


@pytest.mark.parametrize("key, method", PAGE_CASES, ids=[f"{m} {k}" for k, m in PAGE_CASES])
def test_portal_route_refuses_whoever_must_be_refused(world, key, method):
    entry = entry_for(key)
    url = fill(key, entry.obj, world)
    what = (method, url)
    public = entry.kind == "public"
    login_url = "/login/"

    for label, client in (("anonymous", Client()), ("departed session", _session_for(world, "departed"))):
        response = call(client, method, url)
        assert response.status_code < 500, (label, *what, response.content[:300])
        assert_no_leak(response, (label, *what))
        if not public:
            assert response.status_code in (302, 401, 403, 404), (label, *what, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith(login_url), (label, *what, response["Location"])

    for label, who in (("staff", "staff"), ("manager", "manager")):
        response = call(_login(world[who]), method, url)
        assert response.status_code < 500, (label, *what, response.content[:300])
        assert_no_leak(response, (label, *what))
        if entry.kind == "object" and not (entry.read == "public" and method == "GET"):
            assert response.status_code in (302, 403, 404, 405), (label, *what, response.status_code)
            if response.status_code == 302:
                assert not response["Location"].split("?")[0].endswith(url.split("?")[0]), (label, *what)


def test_the_admin_site_is_the_portal():
    assert admin.site.__class__.__name__ == "PortalAdminSite"
