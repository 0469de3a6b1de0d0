"""stylex.matching"""
