"""Every DuckDB statement of the read side lives here, one module per subject; each class
implements its subject's protocol (``store/<subject>.py``) over a :class:`SqlReads`."""
