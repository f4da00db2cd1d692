"""HTTP: the FastAPI app. `create_app(settings)` is the one composition root."""
