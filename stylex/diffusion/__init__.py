"""Diffusion building blocks: attention processor + editors, regional attention, DDIM / flow inversion and
sampling, AdaIN, timestep grids. Imports only stylex.errors."""
