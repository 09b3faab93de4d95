"""StUF 03.01 generic part: stuurgegevens, fault codes, Bv03/Fo03 builders (official shapes)."""
