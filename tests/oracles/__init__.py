"""Independent pandas oracles, one module per metric family (they import no service code)."""
