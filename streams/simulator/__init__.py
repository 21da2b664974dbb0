"""A realistic generator of order, billing and complaint events with labelled incidents."""

from streams.simulator.generator import Incident, SimConfig, Simulation, simulate

__all__ = ["Incident", "SimConfig", "Simulation", "simulate"]
