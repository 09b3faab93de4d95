"""Testers' side of the chain: fakes of the far systems, scenarios, record/compare."""
