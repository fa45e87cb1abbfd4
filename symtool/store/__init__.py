"""symtool.store"""
