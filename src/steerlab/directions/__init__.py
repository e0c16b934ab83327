"""Directions: estimators, confound projection, the Direction type and its file formats."""

from steerlab.directions.confounds import CONFOUNDS, confound_directions, project_out
from steerlab.directions.direction import FORMAT_VERSION, Direction
from steerlab.directions.estimators import ESTIMATORS, Estimator, get_estimator, register
from steerlab.directions.extract import Separation, extract, held_out_split, separation
from steerlab.directions.gguf_export import export_gguf, read_gguf_control_vector

__all__ = [
    "CONFOUNDS",
    "Direction",
    "ESTIMATORS",
    "Estimator",
    "FORMAT_VERSION",
    "Separation",
    "confound_directions",
    "export_gguf",
    "extract",
    "get_estimator",
    "held_out_split",
    "project_out",
    "read_gguf_control_vector",
    "register",
    "separation",
]
