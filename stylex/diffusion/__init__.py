"""stylex.diffusion"""
