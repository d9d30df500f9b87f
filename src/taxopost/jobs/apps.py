from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "taxopost.jobs"
    label = "jobs"
    verbose_name = "Jobs"
