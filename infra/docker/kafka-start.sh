#!/bin/sh
# The broker of the docker-compose deployment (apache/kafka image), configured from the
# secrets `tiaojie deploy secrets` wrote: clients log in with SASL/SCRAM-SHA-512 over TLS on
# kafka:9093; the broker's own connections use a loopback listener; the KRaft controller
# listener takes SASL/PLAIN from the broker alone; the StandardAuthorizer allows nothing
# without an ACL. The SCRAM credentials of `admin` and `broker` are written into the
# metadata when the storage is formatted (KIP-900), so the broker never runs open.
set -eu
S=/run/secrets
ADMIN=$(cat "$S/kafka_admin_password")
BROKER=$(cat "$S/kafka_broker_password")
CONTROLLER=$(cat "$S/kafka_controller_password")
HOST="${KAFKA_HOST:-kafka}"
DATA=/var/lib/kafka/data
CONF=/tmp/server.properties
umask 077
cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9094
listeners=SASL_SSL://:9093,INTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094
advertised.listeners=SASL_SSL://${HOST}:9093,INTERNAL://127.0.0.1:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="${CONTROLLER}" user_controller="${CONTROLLER}";
listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="${BROKER}";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$S/broker.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker;User:controller
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=6
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
# The healthcheck's and operators' client settings (inside the container only).
cat > /tmp/admin.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${ADMIN}";
PROPS
if [ ! -f "$DATA/meta.properties" ]; then
  CLUSTER_ID=$(/opt/kafka/bin/kafka-storage.sh random-uuid)
  /opt/kafka/bin/kafka-storage.sh format "--cluster-id=$CLUSTER_ID" -c "$CONF" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${ADMIN}]" \
    --add-scram "SCRAM-SHA-512=[name=broker,password=${BROKER}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONF"
