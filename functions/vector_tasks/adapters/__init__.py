"""Everything that talks to AWS or OpenSearch. Clients are made lazily and can be injected."""
