use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use testenv::kafka::{client_config, create_topic};
use testenv::unique_name;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Produces one record the way the receiver will (acks=all, idempotent) and
/// returns its partition and offset.
async fn produce(topic: &str, key: &str, payload: &str) -> (i32, i64) {
    let producer: FutureProducer = client_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("a Kafka producer");
    let delivery = producer
        .send(FutureRecord::to(topic).key(key).payload(payload), TIMEOUT)
        .await
        .unwrap_or_else(|(e, _)| panic!("producing to {topic} failed: {e}"));
    (delivery.partition, delivery.offset)
}

#[tokio::test]
async fn a_topic_is_created_and_a_record_produced_and_consumed() {
    let topic = create_topic("smoke", 3).await;

    let consumer: StreamConsumer = client_config()
        .set("group.id", unique_name("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a Kafka consumer");
    let metadata = consumer
        .fetch_metadata(Some(&topic), TIMEOUT)
        .expect("metadata of the new topic");
    let partitions = metadata.topics()[0].partitions().len();
    assert_eq!(partitions, 3, "the topic has the partitions asked for");

    let (partition, offset) = produce(&topic, "recipient-1", "hello").await;
    assert_eq!(offset, 0, "the first record of a new partition");

    consumer.subscribe(&[&topic]).expect("subscribe");
    let message = tokio::time::timeout(TIMEOUT, consumer.recv())
        .await
        .expect("a record within the timeout")
        .expect("a record, not an error");
    assert_eq!(message.key(), Some(&b"recipient-1"[..]));
    assert_eq!(message.payload(), Some(&b"hello"[..]));
    assert_eq!((message.partition(), message.offset()), (partition, offset));
}
