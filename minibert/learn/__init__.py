"""Learn by building: the reference blocks as exercises (`minibert learn init`) and a grader that checks them
against transformers, block by block (`minibert learn check`)."""

from .exercises import TRACKS, init
from .grader import check, report

__all__ = ["TRACKS", "check", "init", "report"]
