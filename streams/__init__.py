"""Thin faust adapters: decode records, call ``detectors``, update tables, emit views."""
