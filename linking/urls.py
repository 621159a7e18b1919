from django.urls import path

from linking import staff_views, views

app_name = "linking"

urlpatterns = [
    path(
        "staff/banks/<slug:bank>/customer-sign-in/",
        staff_views.identity_provider,
        name="identity_provider",
    ),
    path("link/<slug:bank>/", views.link_start, name="start"),
    path("link/<slug:bank>/login", views.customer_login, name="login"),
    path("link/<slug:bank>/consent", views.consent, name="consent"),
    path("link/<slug:bank>/oidc/start", views.oidc_start, name="oidc-start"),
    path("link/<slug:bank>/oidc/callback", views.oidc_callback, name="oidc-callback"),
    path("my/<slug:bank>/", views.dashboard, name="dashboard"),
    path("my/<slug:bank>/consents/<int:consent_id>/revoke", views.consent_revoke, name="revoke"),
    path("my/<slug:bank>/consents/<int:consent_id>/renew", views.consent_renew, name="renew"),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/receipt.json",
        views.consent_receipt,
        name="receipt",
    ),
    path("my/<slug:bank>/shared.json", views.shared_export, name="export"),
    path("my/<slug:bank>/logout", views.customer_logout, name="logout"),
]
