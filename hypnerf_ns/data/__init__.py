"""Category datasets: parsing object folders and batching rays from several objects."""
