"""Vector ingestion tasks: upsert objects into, or delete them from, a model's k-NN index."""
