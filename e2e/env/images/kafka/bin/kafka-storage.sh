#!/bin/bash
# As the Kafka distribution's script of this name.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
