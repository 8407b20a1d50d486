from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tagportal.api.exceptions import api_not_found
from tagportal.health import HealthView, WorkerHealthView

api_v1 = [
    path("", include("org.api.urls")),
    path("", include("tags.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("insights.api.urls")),
    path("", include("channels.api.urls")),
    path("", include("rules.api.urls")),
    path("", include("wecom.api.urls")),
]

urlpatterns = [
    path("health/", HealthView.as_view(), name="health"),  # load balancers: no auth, no redirect (prod)
    path("health/workers/", WorkerHealthView.as_view(), name="health-workers"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/", api_not_found),
    path("wecom/", include("wecom.urls")),
    path("m/", include("customers.sidebar")),  # the mobile sidebar portrait (daily)
    path("c/", include("channels.urls")),  # channel codes' public landing pages
    path("", admin.site.urls),
]
urlpatterns += static(settings.STATIC_URL)

handler500 = "tagportal.views.server_error"  # friendly page; JSON under /api/ (prod)
