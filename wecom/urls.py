"""Routes of the WeCom connection outside the API: the callback WeCom calls (/wecom/...)."""

urlpatterns: list = []
