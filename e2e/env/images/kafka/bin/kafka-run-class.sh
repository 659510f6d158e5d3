#!/bin/bash
# Runs a class of Kafka's jars, as the distribution's script of this name does.
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} ${KAFKA_JVM_PERFORMANCE_OPTS:-} ${KAFKA_OPTS:-} \
	-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
	-cp '/opt/kafka/libs/*' "$@"
