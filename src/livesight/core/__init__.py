"""Shared vocabulary. Imports nothing else of livesight."""
