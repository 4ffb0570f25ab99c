"""Device models: plain Python objects with ``read``/``write`` register regions.

Nothing in this package imports the CPU engine; devices reach guest memory only through the
address space and the machine only through the callbacks they are given.
"""
