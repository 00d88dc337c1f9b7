"""The built-in dashboard's static files (served by gateway.api.ui)."""
