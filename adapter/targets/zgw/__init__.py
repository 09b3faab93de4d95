"""ZGW target: Catalogi lookups, Zaken and Documenten calls (VNG ZGW APIs 1.x)."""
