from django.urls import path

from conversation import views
from conversation.models import ConversationText

app_name = "conversation"

PREFIX = "staff/banks/<slug:bank>/"

urlpatterns = [
    path(PREFIX + "inbox/", views.inbox, name="inbox"),
    path(PREFIX + "inbox/feed.json", views.inbox_feed, name="inbox_feed"),
    path(PREFIX + "inbox/settings/", views.inbox_settings, name="inbox_settings"),
    path(
        PREFIX + "inbox/canned-replies/versions/<int:canned_version>/",
        views.canned_reply_version,
        name="canned_reply_version",
    ),
    path(
        PREFIX + "inbox/canned-replies/versions/<int:canned_version>/approve/",
        views.canned_reply_version_approve,
        name="canned_reply_version_approve",
    ),
    path(
        PREFIX + "inbox/canned-replies/versions/<int:canned_version>/reject/",
        views.canned_reply_version_reject,
        name="canned_reply_version_reject",
    ),
    path(
        PREFIX + "inbox/canned-replies/versions/<int:canned_version>/rollback/",
        views.canned_reply_version_rollback,
        name="canned_reply_version_rollback",
    ),
    path(
        PREFIX + "inbox/canned-replies/<int:canned>/",
        views.canned_reply_edit,
        name="canned_reply_edit",
    ),
    path(
        PREFIX + "inbox/canned-replies/<int:canned>/delete",
        views.canned_reply_delete,
        name="canned_reply_delete",
    ),
    path(PREFIX + "inbox/<int:conversation>/", views.inbox_thread, name="inbox_thread"),
    path(
        PREFIX + "inbox/<int:conversation>/feed.json",
        views.inbox_thread_feed,
        name="inbox_thread_feed",
    ),
    path(PREFIX + "inbox/<int:conversation>/reply", views.inbox_reply, name="inbox_reply"),
    path(PREFIX + "inbox/<int:conversation>/note", views.inbox_note, name="inbox_note"),
    path(PREFIX + "inbox/<int:conversation>/assign", views.inbox_assign, name="inbox_assign"),
    path(PREFIX + "inbox/<int:conversation>/resolve", views.inbox_resolve, name="inbox_resolve"),
    path(PREFIX + "fraud-answers/", views.fraud_answers, name="fraud_answers"),
    path(
        PREFIX + "fraud-answers/callbacks/<int:callback>/retry",
        views.callback_retry,
        name="callback_retry",
    ),
    # One editor for every kind of the bank's texts, at the address each kind always had.
    path(
        PREFIX + "fraud-answers/next-steps/",
        views.conversation_texts,
        {"kind": ConversationText.Kind.FRAUD_DENIED},
        name="conversation_texts",
    ),
    path(
        PREFIX + "automated-chat-texts/",
        views.conversation_texts,
        {"kind": ConversationText.Kind.AUTOMATED},
        name="automated_texts",
    ),
    path(
        PREFIX + "texts/versions/<int:text_version>/",
        views.conversation_text_version,
        name="conversation_text_version",
    ),
    path(
        PREFIX + "texts/versions/<int:text_version>/approve/",
        views.conversation_text_version_approve,
        name="conversation_text_version_approve",
    ),
    path(
        PREFIX + "texts/versions/<int:text_version>/reject/",
        views.conversation_text_version_reject,
        name="conversation_text_version_reject",
    ),
    path(
        PREFIX + "texts/versions/<int:text_version>/rollback/",
        views.conversation_text_version_rollback,
        name="conversation_text_version_rollback",
    ),
]
