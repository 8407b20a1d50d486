"""Models of the wecom app."""
