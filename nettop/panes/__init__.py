"""Panes: Textual widgets drawn from snapshots. None of them imports bcc."""
