"""Pure domain logic of vhc-watch: synchronous, typed, framework-free.

Detectors are fed declarations one by one with their event time; their state is passed
in and out so it can live in a faust table. Nothing here touches Kafka, Redis, asyncio
or the wall clock.
"""
