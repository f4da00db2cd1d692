"""Watches: standing questions on a stream, asked by the server at an interval (docs/watches.md).

`service.WatchService` owns the watches (create, pause, end, results, subscribers) and runs one
asyncio task per active watch; `runner.ChatRunner` is the seam through which a tick runs its chat
request; `gate.ModelGate` bounds and shares the model calls; `webhooks.Deliverer` delivers results.
This package never imports livesight.api.
"""
