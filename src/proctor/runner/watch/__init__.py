"""``proctor watch``: the import graph, cycle plans, the loop and its input sources."""
