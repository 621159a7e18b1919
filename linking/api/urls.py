from django.urls import path

from linking.api.views import CustomerUpsertApi

app_name = "linking-api"

urlpatterns = [
    path("customers/<str:customer_id>", CustomerUpsertApi.as_view(), name="customer-upsert"),
]
