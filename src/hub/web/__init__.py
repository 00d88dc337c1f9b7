"""Static files of the hub's pages (the style sheet)."""
