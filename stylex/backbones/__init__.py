"""stylex.backbones"""
