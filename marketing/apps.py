from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"

    def ready(self) -> None:
        from marketing import signals

        signals.connect_effects()
