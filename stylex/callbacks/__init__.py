"""Lightning callbacks: the output writer (files on disk) and W&B visuals. Imports methods (the `Stylized` record), data."""
