"""Getting data in: read case and station exports, clean them, attach them to the grid, load."""
