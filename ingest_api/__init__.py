"""The HTTP edge of vhc-watch: ingest for front ends, registry, stats and health for staff."""
