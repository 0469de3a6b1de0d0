"""stylex.metrics"""
