"""Training in NumPy: hand-written gradients (minibert/nn/*_backward), AdamW and the BERT schedule."""

from .grad import accumulate, distillation_loss, dropout_masks, value_and_grad
from .heads import sequence_loss
from .masking import mask_tokens
from .optim import AdamW, clip_grad_norm, linear_schedule

__all__ = ["AdamW", "accumulate", "distillation_loss", "clip_grad_norm", "dropout_masks", "linear_schedule",
           "mask_tokens", "sequence_loss", "value_and_grad"]
