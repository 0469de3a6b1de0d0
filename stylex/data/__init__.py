"""stylex.data"""
