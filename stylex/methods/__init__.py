"""stylex.methods"""
