"""python -m stylex.studio: a local web page to see StyleGallery's regions and matches, edit them, stylize, and
copy the equivalent batch command. Built on the batch run's own code (datamodule, StyleGallery's stages, the
output writer); nothing in stylex imports this package."""
