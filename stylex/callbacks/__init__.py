"""stylex.callbacks"""
