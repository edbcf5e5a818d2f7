from __future__ import annotations

from django.urls import path

from claudeapp.chat import stream_views, views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/new", views.conversation_new, name="new"),
    path("c/<str:public_id>/", views.conversation_detail, name="conversation"),
    path("c/<str:public_id>/rename", views.conversation_rename, name="rename"),
    path("c/<str:public_id>/delete", views.conversation_delete, name="delete"),
    path("c/<str:public_id>/send", stream_views.send, name="send"),
    path("usage/", views.usage, name="usage"),
]
