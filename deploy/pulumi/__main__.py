"""The program `pulumi up` runs: the backing servers on the configured target."""

import backing

backing.program()
