"""The errors minibert raises for bad files, bad configs and unreachable models; each names the problem."""


class ConfigError(ValueError):
    """A config.json that does not describe a BERT encoder minibert can run."""


class WeightsError(ValueError):
    """A checkpoint that cannot be read, or whose tensors do not fit the model."""


class CheckpointError(WeightsError):
    """A torch .bin checkpoint that is malformed, truncated, or asks to run code."""


class HubError(OSError):
    """A model that is neither a local directory nor obtainable from the Hugging Face hub or its cache."""
