from django.apps import AppConfig


class PostprocessingConfig(AppConfig):
    name = "taxopost.postprocessing"
    label = "postprocessing"
    verbose_name = "Post-processing"

    def ready(self) -> None:
        from taxopost import security  # noqa: F401  (registers the deployment check)
        from taxopost.postprocessing import registry

        registry.load_builtin_tasks()
