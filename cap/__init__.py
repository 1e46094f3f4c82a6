"""CAP 1.2 as data: model, sans-IO codec, validation profiles, feed parsing."""
