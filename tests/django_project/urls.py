from __future__ import annotations

from django.urls import path

from tests.django_project.testapp import views

urlpatterns = [
    path("", views.index),
    path("login/", views.do_login),
    path("notify/", views.notify),
]
