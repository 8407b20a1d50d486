"""Admin for jobs (bulk tagging and others)."""
