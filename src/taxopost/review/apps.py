from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "taxopost.review"
    label = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        from taxopost.review import edit_signals

        edit_signals.connect()
