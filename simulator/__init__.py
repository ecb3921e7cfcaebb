"""Simulated scanning front ends: register a few checkpoints and send declarations."""
