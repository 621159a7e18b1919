from django.urls import path, re_path

from sandbox import api, graph, views

app_name = "sandbox"

VERSION = r"(?P<version>v\d+\.\d+)"

urlpatterns = [
    # The chat view
    path("", views.index, name="index"),
    path("pages/<str:page_id>/users", views.user_add, name="user-add"),
    path("chat/<str:page_id>/<str:psid>/", views.chat, name="chat"),
    path("chat/<str:page_id>/<str:psid>/thread", views.chat_thread, name="chat-thread"),
    path("chat/<str:page_id>/<str:psid>/send", views.chat_send, name="chat-send"),
    path("chat/<str:page_id>/<str:psid>/login", views.chat_login, name="chat-login"),
    path("chat/<str:page_id>/<str:psid>/logout", views.chat_logout, name="chat-logout"),
    path("link/done", views.link_done, name="link-done"),
    # m.me links (MESSENGER_ME_URL in local settings): who opens this one?
    path("m.me/<str:page_ref>", views.m_me, name="m-me"),
    path("chat/<str:page_id>/<str:psid>/open-link", views.chat_open_link, name="chat-open-link"),
    # The control API
    path("api/pages", api.pages, name="api-pages"),
    path("api/pages/<str:page_id>/verify-webhook", api.page_verify_webhook),
    path("api/pages/<str:page_id>/faults", api.page_faults, name="api-faults"),
    path("api/pages/<str:page_id>/users", api.page_users, name="api-users"),
    path("api/pages/<str:page_id>/users/<str:psid>/thread", api.user_thread),
    path("api/pages/<str:page_id>/users/<str:psid>/messages", api.user_messages),
    path("api/pages/<str:page_id>/users/<str:psid>/postbacks", api.user_postbacks),
    path("api/pages/<str:page_id>/users/<str:psid>/referrals", api.user_referrals),
    path("api/pages/<str:page_id>/users/<str:psid>/read", api.user_read),
    path("api/pages/<str:page_id>/users/<str:psid>/page-inbox", api.user_page_inbox),
    path("api/pages/<str:page_id>/users/<str:psid>/logout", api.user_logout),
    path("api/pages/<str:page_id>/users/<str:psid>/link", api.user_link),
    path("api/pages/<str:page_id>/users/<str:psid>/age", api.user_age),
    path("api/calls", api.calls, name="api-calls"),
    path("api/webhooks", api.webhook_deliveries, name="api-webhooks"),
    # The Graph API, at MESSENGER_GRAPH_API_URL = <portal>/sandbox/graph
    re_path(rf"^graph/{VERSION}/me/messages$", graph.messages, {"page_ref": "me"}),
    re_path(rf"^graph/{VERSION}/me/unlink_accounts$", graph.unlink_accounts),
    re_path(rf"^graph/{VERSION}/me/messenger_profile$", graph.messenger_profile),
    re_path(rf"^graph/{VERSION}/me$", graph.me),
    re_path(rf"^graph/{VERSION}/(?P<page_ref>\d+)/messages$", graph.messages),
    re_path(rf"^graph/{VERSION}/(?P<page_ref>\d+)/message_templates$", graph.message_templates),
    re_path(rf"^graph/{VERSION}/(?P<page_ref>\d+)/subscribed_apps$", graph.subscribed_apps),
    re_path(rf"^graph/{VERSION}/(?P<node_id>\d+)$", graph.node),
]
