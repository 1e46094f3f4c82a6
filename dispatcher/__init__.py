"""The capcast service: config, store, queue, pipeline, workers, HTTP API, CLI."""
