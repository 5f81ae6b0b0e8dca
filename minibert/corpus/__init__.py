"""A whole corpus through a small BERT: embed or classify files of any size, resumably, locally or on Ray.

    Embedder, Classifier   the worker classes engines call (Ray Data's map_batches, Dask, Spark)
    Job, run_local, run_ray  a file in, numbered shards out (what `minibert embed/classify --output` runs)
    load                   the shards of an output directory, concatenated: (ids, values)
"""

from .job import Job
from .local import run_local
from .ray_engine import run_ray
from .shards import load
from .worker import Classifier, Embedder

__all__ = ["Classifier", "Embedder", "Job", "load", "run_local", "run_ray"]
