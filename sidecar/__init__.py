"""flow-gitops sidecar: keeps a Node-RED Flow App aligned with a Git repository."""

__version__ = "0.1.0"
