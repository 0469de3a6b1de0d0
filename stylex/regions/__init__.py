"""stylex.regions"""
