"""Source indexing: map every source file a PDB lists to a URL (or a path)
a debugger can fetch it from, and write the ``srcsrv`` and ``sourcelink``
streams into the PDB (see docs/srcindex.md).

* :mod:`symtool.srcindex.git`: facts about the workspace's git checkout;
* :mod:`symtool.srcindex.rules`: the mapping rules (``--map``, std, registry
  crates, workspace forge, source archive) and checksum verification;
* :mod:`symtool.srcindex.streams`: the ``srcsrv`` and Source Link texts (written and read);
* :mod:`symtool.srcindex.lookup`: a PDB's source index read back, file path -> URL (frames' ``source_url``);
* :mod:`symtool.srcindex.index`: planning and writing, per PDB.
"""
