"""Alert areas to geometry, cell inventories, the batched targeting index, reports."""
