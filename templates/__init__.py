"""Built-in notification templates (installed as ``notifier.templates``); see README.md here."""
