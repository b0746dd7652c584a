"""Rendering of traces, datasets and reports for people (terminal and HTML)."""
