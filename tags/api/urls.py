from rest_framework.routers import SimpleRouter

from .views import PersonalTagViewSet, TagGroupViewSet, TagViewSet

router = SimpleRouter(trailing_slash=True)
router.register("tag-groups", TagGroupViewSet, basename="tag-group")
router.register("tags", TagViewSet, basename="tag")
router.register("personal-tags", PersonalTagViewSet, basename="personal-tag")

urlpatterns = router.urls
