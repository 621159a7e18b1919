app_name = "linking-api"

urlpatterns: list = []
