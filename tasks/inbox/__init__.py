"""Where source files come from: the local inbox folder (`folder.py`), when a file is
ready (`settle.py`), and reading one with a size cap (`read.py`). Another source
(an object store) replaces this folder."""
