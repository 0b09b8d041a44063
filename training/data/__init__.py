"""Datasets from an archive: pairing studies with reports, caching tensors, splits."""
