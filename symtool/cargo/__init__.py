"""symtool.cargo"""
