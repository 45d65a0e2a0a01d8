"""Schema files (JSON); loaded by pipeline.schema."""
