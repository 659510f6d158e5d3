//! The repository's docker-compose.yml, as a user runs it, on the images
//! `just docker-build-all` built and the test environment's stand-ins for
//! Kafka, PostgreSQL and Redis: clients connected through the distributor
//! receive, in order, what is published through the receiver, while each
//! role's container is killed and started again; Prometheus (the
//! observability profile) scrapes every role; `down` removes it all.

mod exclusive;

use testenv::docker::Compose;

#[test]
fn the_compose_file_is_valid() {
    Compose::unstarted().run(&["config", "--quiet"]);
}
