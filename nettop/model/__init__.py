"""Plain, typed snapshots: what probes hand out, what panes draw and what `record` writes.

Nothing here imports BCC, so panes, replay and tests work on any machine.
"""
