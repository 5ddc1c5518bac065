"""corral's Python SDK: write a connector as a JupiterOne integration is written, built
into a sandboxed WebAssembly component with componentize-py.

    from corral_sdk import Capabilities, ConfigField, Definition, Step, define_connector
"""

from corral_sdk.capabilities import Capabilities
from corral_sdk.connector import ConfigField, Definition, Step, define_connector
from corral_sdk.entity import create_direct_relationship, create_integration_entity
from corral_sdk.errors import (
    AuthenticationError,
    ConfigError,
    DataModelError,
    HttpFailure,
    IntegrationError,
    ProviderError,
)
from corral_sdk.graph import GraphFailure, JobState

__version__ = "0.2.0"

__all__ = [
    "AuthenticationError",
    "Capabilities",
    "ConfigError",
    "ConfigField",
    "DataModelError",
    "Definition",
    "GraphFailure",
    "HttpFailure",
    "IntegrationError",
    "JobState",
    "ProviderError",
    "Step",
    "create_direct_relationship",
    "create_integration_entity",
    "define_connector",
]
