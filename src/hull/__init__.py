"""hull: a container engine and OCI runtime built on Linux namespaces and cgroups."""

__version__ = "0.1.0"
OCI_VERSION = "1.2.0"
