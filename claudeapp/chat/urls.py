from __future__ import annotations

from django.urls import path

from claudeapp.chat import jobs_views, stream_views, views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/new", views.conversation_new, name="new"),
    path("c/<str:public_id>/", views.conversation_detail, name="conversation"),
    path("c/<str:public_id>/rename", views.conversation_rename, name="rename"),
    path("c/<str:public_id>/delete", views.conversation_delete, name="delete"),
    path("c/<str:public_id>/send", stream_views.send, name="send"),
    path("c/<str:public_id>/estimate", views.turn_estimate, name="estimate"),
    path("usage/", views.usage, name="usage"),
]

# Background jobs of the signed-in person (/jobs/ itself belongs to claudeapp.jobs.urls).
urlpatterns += [
    path("my/jobs/", jobs_views.jobs_page, name="jobs"),
    path("my/jobs/live", jobs_views.jobs_live, name="jobs_live"),
    path("my/jobs/<uuid:job_id>/", jobs_views.job_detail, name="job"),
    path("c/<str:public_id>/m/<uuid:message_id>/", jobs_views.message_status, name="message"),
]
