"""nettop: a top-style live network dashboard for Linux, built on BCC, Textual and Rich."""

__version__ = "0.1.0"
