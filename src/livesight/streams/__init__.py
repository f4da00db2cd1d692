"""The stream lifecycle: owners, leases, tombstones, publisher state, limits, persistence, end hooks.

Callers type against `directory.StreamDirectory`; `registry.StreamRegistry` is the local
implementation (durable.py its store and marks, journal.py its writer thread, target.py ingest's
handle on one stream). Sits above buffer/ (frames) and store/ (records), below resolve/ and api/.

Where things live, and why:
- journal.py is here, not in buffer/: it writes stream records (owner, lease, marks), never frames.
- `BufferStats`, `StreamFacts`, `SourceSpec` and `EndReason` are in core/: the durable record
  (`core.records.StreamRecord`, which store/ reads and writes) holds a tombstone's facts and the
  pulled source, and store/ may not import this package.
- The index/clock marks are durable.py's, keyed by stream id, not fields of `Stream`: another
  implementation of the directory need not have them.
- Ingest sees only `core.frame.IngestDirectory` (ingest_target, add_end_hook), which
  `StreamDirectory` extends.
"""
