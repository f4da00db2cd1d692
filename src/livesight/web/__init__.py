"""The playground page (static files)."""
