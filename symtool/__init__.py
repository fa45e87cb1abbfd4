"""symtool: make every crash of a Rust program debuggable."""

__version__ = "0.1.0"
