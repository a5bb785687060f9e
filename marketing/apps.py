from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"

    def ready(self) -> None:
        from marketing import signals  # noqa: F401  # connects the receivers
