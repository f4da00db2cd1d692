"""The stream lifecycle: owners, leases, tombstones, publisher state, limits, persistence, end hooks.

Callers type against `directory.StreamDirectory`; `registry.StreamRegistry` is the local
implementation (durable.py its store and marks, journal.py its writer thread, target.py ingest's
handle on one stream). Sits above buffer/ (frames) and store/ (records), below resolve/ and api/.
"""
