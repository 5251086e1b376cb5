"""The engine: layers, activations, costs, initialisers, optimisers, schedules, the
network container and model files -- pure NumPy, float32, batch-first."""

from digitlab.nn.build import build_network
from digitlab.nn.model_file import Model, load_model, save_model
from digitlab.nn.network import Network

__all__ = ["Model", "Network", "build_network", "load_model", "save_model"]
