from django.urls import path

from notifications import staff_views

app_name = "deliveries"

urlpatterns = [
    path(
        "staff/banks/<slug:bank>/dead-letters/",
        staff_views.dead_letters,
        name="dead_letters",
    ),
    path(
        "staff/banks/<slug:bank>/dead-letters/replay/",
        staff_views.dead_letters_replay,
        name="dead_letters_replay",
    ),
    path(
        "staff/banks/<slug:bank>/dead-letters/<int:notification>/replay/",
        staff_views.dead_letter_replay,
        name="dead_letter_replay",
    ),
]
