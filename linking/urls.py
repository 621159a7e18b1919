from django.urls import path

from linking import (
    flows_views,
    invitation_views,
    sharing_views,
    staff_views,
    subject_views,
    views,
)

app_name = "linking"

urlpatterns = [
    path(
        "staff/banks/<slug:bank>/customer-sign-in/",
        staff_views.identity_provider,
        name="identity_provider",
    ),
    path("staff/banks/<slug:bank>/links/", staff_views.links, name="links"),
    path(
        "staff/banks/<slug:bank>/links/<int:consent>/",
        staff_views.link_detail,
        name="link_detail",
    ),
    path(
        "staff/banks/<slug:bank>/links/export.csv",
        staff_views.links_export,
        {"fmt": "csv"},
        name="links_export_csv",
    ),
    path(
        "staff/banks/<slug:bank>/links/export.jsonl",
        staff_views.links_export,
        {"fmt": "jsonl"},
        name="links_export_jsonl",
    ),
    path(
        "staff/banks/<slug:bank>/customers/<int:customer>/revoke-all/",
        staff_views.customer_revoke_all,
        name="customer_revoke_all",
    ),
    path(
        "staff/banks/<slug:bank>/customers/<int:customer>/data/",
        subject_views.subject_request,
        name="subject_request",
    ),
    path(
        "staff/banks/<slug:bank>/customers/<int:customer>/data/export.json",
        subject_views.subject_export,
        name="subject_export",
    ),
    path(
        "staff/banks/<slug:bank>/customers/<int:customer>/data/erase/",
        subject_views.subject_erase,
        name="subject_erase",
    ),
    path("staff/banks/<slug:bank>/linking-flows/", flows_views.linking_flows, name="flows"),
    path(
        "link/<slug:bank>/invitation/<str:token>",
        invitation_views.invitation_open,
        name="invitation",
    ),
    path(
        "link/<slug:bank>/invitation",
        invitation_views.invitation_consent,
        name="invitation-consent",
    ),
    path("link/<slug:bank>/", views.link_start, name="start"),
    path("link/<slug:bank>/login", views.customer_login, name="login"),
    path("link/<slug:bank>/consent", views.consent, name="consent"),
    path("link/<slug:bank>/oidc/start", views.oidc_start, name="oidc-start"),
    path("link/<slug:bank>/oidc/callback", views.oidc_callback, name="oidc-callback"),
    path("my/<slug:bank>/", views.dashboard, name="dashboard"),
    path("my/<slug:bank>/pass/<str:token>", sharing_views.dashboard_pass, name="pass"),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/change",
        sharing_views.consent_change,
        name="change",
    ),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/renew", sharing_views.consent_renew, name="renew"
    ),
    path("my/<slug:bank>/consents/<int:consent_id>/stop", sharing_views.consent_stop, name="stop"),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/revoke",
        sharing_views.consent_revoke,
        name="revoke",
    ),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/stopped",
        sharing_views.consent_stopped,
        name="stopped",
    ),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/receipt",
        sharing_views.consent_receipt_page,
        name="receipt-page",
    ),
    path(
        "my/<slug:bank>/consents/<int:consent_id>/receipt.json",
        sharing_views.consent_receipt,
        name="receipt",
    ),
    path("my/<slug:bank>/shared", sharing_views.shared_page, name="shared"),
    path("my/<slug:bank>/shared.json", sharing_views.shared_export, name="export"),
    path("my/<slug:bank>/logout", views.customer_logout, name="logout"),
]
