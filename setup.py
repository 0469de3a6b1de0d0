"""Metadata and dependencies are in setup.cfg. The configs/ folder ships inside the package, as stylex/configs,
so an installed stylex (pip install ., a wheel) finds its configs: see stylex.data.samples.config_dir."""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["stylex", "stylex.*"]), "stylex.configs"],
    package_dir={"stylex.configs": "configs"},
    package_data={"stylex": ["py.typed"], "stylex.configs": ["*.yaml", "**/*.yaml"]},
)
