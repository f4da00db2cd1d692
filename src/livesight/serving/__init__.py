"""Chat serving: the wire protocol, building the typed request, and running resolve → backend → report."""
