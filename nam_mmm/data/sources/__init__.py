"""Data sources: every loader that turns a file or a generator into a canonical :class:`~nam_mmm.data.panel.Panel`."""
