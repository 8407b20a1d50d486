"""The mobile sidebar portrait (手机侧边栏客户画像): the portrait cut for a phone and WeCom's chat
sidebar (聊天工具栏), one column, touch-sized.

`/m/` is the sidebar's entry: inside WeCom (when an integration registered through
`customers.hooks.register_sidebar_integration` gives the JS-SDK context) it asks the client which
customer the chat is with and opens `/m/customers/<external_userid>/`; elsewhere it lists the
viewer's customers. The portrait page reads and writes exactly what the desktop portrait does: the
same visible tag tree, the same `CustomerTagsForm`, and the same save through
`customers.services.customer_tags_replace` (tags hidden from the viewer are kept, rule 8), so this
module only lays them out. Login is the portal's usual one (back to the page afterwards), or the
integration's (WeCom OAuth) when it offers one.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from org.actors import Actor

from .admin import tags_not_saved_message
from .hooks import sidebar_integrations
from .models import Customer, FollowRelation, Message, Note, RelationStatus
from .selectors import visible_customers
from .transfers import without_archived_portraits

LAST_MESSAGES = 10
LAST_NOTES = 5
HOME_CUSTOMERS = 30


def _customer_admin():
    return admin.site._registry[Customer]


def sidebar_login_required(view):
    """The portal's own rule (`AdminSite.has_permission`: an active account that may use the portal);
    a visitor who is not logged in is sent to an integration's login (WeCom OAuth) when one takes
    them, else to the usual login form, and comes back to this page afterwards."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not admin.site.has_permission(request):
            if request.user.is_authenticated:
                raise PermissionDenied
            next_url = request.get_full_path()
            for integration in sidebar_integrations():
                response = integration.login(request, next_url)
                if response is not None:
                    return response
            return redirect_to_login(next_url, reverse("admin:login"))
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


def _integration_context(request) -> dict | None:
    for integration in sidebar_integrations():
        context = integration.page_context(request)
        if context:
            return context
    return None


@sidebar_login_required
def sidebar_home(request):
    """The sidebar's entry: WeCom tells the page the current customer; elsewhere, the viewer's
    customers (search by name or remark) each linking to their mobile portrait."""
    q = (request.GET.get("q") or "").strip()
    customers = visible_customers(request.user)
    if q:
        customers = customers.filter(
            Q(name__icontains=q) | Q(follow_relations__remark__icontains=q, follow_relations__employee=request.user)
        ).distinct()
    context = {
        "title": _("客户侧边栏"),
        "q": q,
        "customers": list(customers.order_by("-pk")[:HOME_CUSTOMERS]),
        "integration": _integration_context(request),
        "portrait_url_prefix": reverse("sidebar-portrait", args=["__id__"]).replace("__id__/", ""),
    }
    return TemplateResponse(request, "customers/sidebar/home.html", context)


@sidebar_login_required
def sidebar_portrait(request, external_userid: str):
    """客户画像 on the phone: tags (one tap to save), personal tags, a note, the last messages."""
    model_admin = _customer_admin()
    customer = visible_customers(request.user).filter(external_userid=external_userid).first()
    if customer is None:
        raise Http404(_("没有这个客户，或你无权查看。"))
    tags_form = model_admin._tags_form(request, customer)
    can_note = request.user.has_perm("customers.add_note")
    from .forms import NoteForm

    note_form = NoteForm(prefix="note")
    action = request.POST.get("_action") if request.method == "POST" else None
    if action == "tags":
        if not tags_form.can_change:
            raise PermissionDenied
        tags_form = model_admin._tags_form(request, customer, data=request.POST)
        if tags_form.is_valid() and model_admin._save_tags(request, customer, tags_form):
            return HttpResponseRedirect(request.path)
        messages.error(request, tags_not_saved_message())
    elif action == "note":
        if not can_note:
            raise PermissionDenied
        note_form = NoteForm(request.POST, prefix="note")
        if note_form.is_valid():
            from tagportal.errors import DomainError

            from .services import note_create

            try:
                note_create(actor=Actor(employee=request.user), customer=customer, text=note_form.cleaned_data["text"])
            except DomainError as exc:
                note_form.add_error(None, exc.message)
            else:
                messages.success(request, _("已添加跟进记录。"))
                return HttpResponseRedirect(request.path + "#notes")
    elif action is not None:
        messages.error(request, _("未知操作。"))

    employee = request.user
    chat = list(
        without_archived_portraits(Message.objects.filter(customer=customer), employee, author_ref="employee_id")
        .select_related("employee").order_by("-sent_at", "-id")[:LAST_MESSAGES]
    )
    chat.reverse()  # oldest first, as a chat reads
    notes = list(
        without_archived_portraits(Note.objects.filter(customer=customer), employee, author_ref="author_id")
        .select_related("author").order_by("-created_at", "-id")[:LAST_NOTES]
    )
    relation = FollowRelation.objects.filter(
        customer=customer, employee=employee, status=RelationStatus.ACTIVE).first()
    context = {
        "title": customer.name or _("客户画像"),
        "customer": customer,
        "relation": relation,
        "tags_form": tags_form,
        "note_form": note_form,
        "can_note": can_note,
        "chat": chat,
        "notes": notes,
        "desktop_url": reverse("admin:customers_customer_change", args=[customer.pk]),
        "home_url": reverse("sidebar-home"),
    }
    return TemplateResponse(request, "customers/sidebar/portrait.html", context)


urlpatterns = [
    path("", sidebar_home, name="sidebar-home"),
    path("customers/<str:external_userid>/", sidebar_portrait, name="sidebar-portrait"),
]
