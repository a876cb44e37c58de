"""Local tooling that runs the function the way Lambda does (not shipped in the bundle)."""
