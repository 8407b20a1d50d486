"""智能标签 keyword rules: message ingestion, the Aho-Corasick matcher, hits, test mode, back-tests, undo."""
