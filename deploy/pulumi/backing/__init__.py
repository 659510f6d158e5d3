"""The backing servers of SaaSaparilla Notifications, as a Pulumi program."""

from . import settings


def program() -> None:
    """Makes the stack's servers on its target and exports how to reach them."""
    config = settings.read()
    if config.target == "kubernetes":
        from .kubernetes import Servers
    else:
        from .docker import Servers
    Servers(config).export()
