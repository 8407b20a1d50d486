from rest_framework.routers import SimpleRouter

from .views import DepartmentViewSet, EmployeeViewSet

router = SimpleRouter(trailing_slash=True)
router.register("departments", DepartmentViewSet, basename="department")
router.register("employees", EmployeeViewSet, basename="employee")

urlpatterns = router.urls
