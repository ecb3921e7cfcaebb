"""Shared pieces every vhc-watch deployable imports: event schemas, topic and key names,
pseudonymisation and partitioning. No I/O happens at import time."""
