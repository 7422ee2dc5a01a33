"""Probes: each owns its BPF C text and its choice of event source, and returns snapshots.

`import bcc` happens only inside a probe's `start()`, so importing nettop needs no root.
"""
