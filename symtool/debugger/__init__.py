"""symtool.debugger"""
