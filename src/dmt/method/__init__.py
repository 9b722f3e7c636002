"""Method logic of DMT as small pure functions on tensors (no engine, data or model imports)."""
