"""Where a cable is parsed: source bytes in, one typed record per cable out.

Pure code, importing only `cablestream.schemas`: no file I/O, no Prefect, no
Great Expectations, no pyarrow. The stages run in this order:

- `decode`: bytes to text (gzip with a cap, replacement decoding);
- `split`: text to cable chunks, with the release's own metadata when present;
- `normalize`: markup and spacing repaired once, before any field is read;
- `fields/`: one small parser per field group, and the record assembler;
- `source`: the public entry point, `parse_source(bytes, path)`.
"""

from cablestream.tasks.parse.source import parse_source, record_id_for

__all__ = ["parse_source", "record_id_for"]
