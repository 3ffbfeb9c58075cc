"""The monthly invoice run: preview, approve, finalize in chunks, hand to delivery; held sessions and outliers."""
