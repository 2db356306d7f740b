"""Building MjModels: robot descriptions and scene composition."""
