"""CPU emulation of real binaries for stack-walking oracles (unicorn): arm64.py runs AArch64 code
to its fault with a shadow stack of executed calls and returns; pe.py loads a PE image."""
