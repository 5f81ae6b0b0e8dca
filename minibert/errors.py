"""The errors minibert raises for bad files, bad configs and unreachable models, each naming the problem; and
the check of an argument that must be a whole number."""

from numbers import Integral


class ConfigError(ValueError):
    """A config.json that does not describe a BERT encoder minibert can run."""


class WeightsError(ValueError):
    """A checkpoint that cannot be read, or whose tensors do not fit the model."""


class CheckpointError(WeightsError):
    """A torch .bin checkpoint that is malformed, truncated, or asks to run code."""


class HubError(OSError):
    """A model that is neither a local directory nor obtainable from the Hugging Face hub or its cache."""


def check_positive_int(name: str, value: object, minimum: int = 1) -> None:
    """Raise ValueError unless value is an integer ≥ minimum (True and False are not taken for 1 and 0)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
