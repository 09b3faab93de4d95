"""Durable store: one ``messages`` table is message log, inbox and error store."""
