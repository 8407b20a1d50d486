from django.urls import path
from rest_framework.routers import SimpleRouter

from .jobs import BulkTaggingView, JobViewSet
from .transfers import TransferViewSet
from .views import CustomerViewSet

router = SimpleRouter(trailing_slash=True)
router.register("customers", CustomerViewSet, basename="customer")
router.register("transfers", TransferViewSet, basename="transfer")
router.register("jobs", JobViewSet, basename="job")

urlpatterns = [
    path("tagging/bulk/", BulkTaggingView.as_view(), name="tagging-bulk"),
    *router.urls,
]
