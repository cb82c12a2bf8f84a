"""Domain code shared by every function: settings, keys, limits, S3 access, errors."""
