from __future__ import annotations

from django.urls import path

from claudeapp.chat import attachment_views, jobs_views, library_views, stream_views, views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/new", views.conversation_new, name="new"),
    path("c/<str:public_id>/", views.conversation_detail, name="conversation"),
    path("c/<str:public_id>/rename", views.conversation_rename, name="rename"),
    path("c/<str:public_id>/delete", views.conversation_delete, name="delete"),
    path("c/<str:public_id>/send", stream_views.send, name="send"),
    path("c/<str:public_id>/estimate", views.turn_estimate, name="estimate"),
    path("c/<str:public_id>/branch", views.switch_branch, name="branch"),
    path("c/<str:public_id>/thread", views.thread_html, name="thread"),
    path("usage/", views.usage, name="usage"),
    path("usage/banner", views.budget_banner_html, name="budget_banner"),
]

# Background jobs of the signed-in person (/jobs/ itself belongs to claudeapp.jobs.urls).
urlpatterns += [
    path("my/jobs/", jobs_views.jobs_page, name="jobs"),
    path("my/jobs/live", jobs_views.jobs_live, name="jobs_live"),
    path("my/jobs/<uuid:job_id>/", jobs_views.job_detail, name="job"),
    path("c/<str:public_id>/m/<uuid:message_id>/", jobs_views.message_status, name="message"),
]

# Attachments, instructions, search and exports (issue 13).
urlpatterns += [
    path("attachments/", attachment_views.upload, name="attachments"),
    path("attachments/<uuid:attachment_id>/", attachment_views.download, name="attachment"),
    path("attachments/<uuid:attachment_id>/discard", attachment_views.discard, name="attachment_discard"),
    path("estimate", views.turn_estimate, name="estimate_new"),  # a new chat's first message
    path("c/<str:public_id>/instructions", library_views.conversation_instructions, name="instructions"),
    path("c/<str:public_id>/export.<str:fmt>", library_views.export_conversation, name="export"),
    path("search/", library_views.search_page, name="search"),
    path("settings/", library_views.settings_page, name="settings"),
    path("settings/export.zip", library_views.export_all, name="export_all"),
]
