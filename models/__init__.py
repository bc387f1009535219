"""Networks only: one file per model family."""
