"""The loket side: every reconstructed detail of StUF-LVO, STAM and the DSO APIs lives in this package."""
