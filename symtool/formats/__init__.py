"""symtool.formats"""
