from django.urls import path

from linking.api.invitations import LinkInvitationCreateApi
from linking.api.views import CustomerUpsertApi

app_name = "linking-api"

urlpatterns = [
    # `path`, not `str`: an id with a slash in it is refused by the view, as a 400 problem
    # naming `customer_id`, rather than found nowhere. A route under a customer
    # (`customers/<id>/…`) must come before this one.
    path(
        "customers/<path:customer_id>/link-invitations",
        LinkInvitationCreateApi.as_view(),
        name="link-invitation-create",
    ),
    path("customers/<path:customer_id>", CustomerUpsertApi.as_view(), name="customer-upsert"),
]
