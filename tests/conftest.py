"""The fixtures come from the `faceplate_models.testing` plugin, registered by the package."""
