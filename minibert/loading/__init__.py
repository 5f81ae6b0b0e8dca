"""Finding and reading checkpoints: the hub, safetensors and torch files, conversion, the miniatures table."""
