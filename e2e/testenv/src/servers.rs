//! Where the test environment's servers are, read from the variables that
//! `just test` exports.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// How to get the variables when one is missing.
const HOW_TO_START: &str = "run the tests with `just test`, which starts the test servers \
     and exports their addresses; or start them with `just env up` and export the \
     addresses into your shell with `eval \"$(e2e/env/notif-env env)\"`";

/// The value of one of the environment's variables; a test that needs the
/// server fails here, with a message that says how to start it.
fn required(var: &str, server: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{var} is not set, so this test cannot reach {server}: {HOW_TO_START}"),
    }
}

/// Kafka's bootstrap servers (`host:port`), for rdkafka's `bootstrap.servers`.
pub fn kafka_bootstrap() -> String {
    required("NOTIF_TEST_KAFKA", "Kafka")
}

/// Redis's URL (`redis://host:port`).
pub fn redis_url() -> String {
    required("NOTIF_TEST_REDIS", "Redis")
}

/// The URLs of the Redis Cluster's masters (`redis://host:port`).
pub fn redis_cluster_urls() -> Vec<String> {
    required("NOTIF_TEST_REDIS_CLUSTER", "the Redis Cluster")
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The URL of the Postgres server's maintenance database. Tests that write
/// make a [`TestDatabase`] of their own instead of using it.
pub fn postgres_url() -> String {
    required("NOTIF_TEST_POSTGRES", "PostgreSQL")
}

/// The URL of the second Postgres server's maintenance database: the
/// inbox's second shard in the scaled deployment.
pub fn second_postgres_url() -> String {
    required("NOTIF_TEST_POSTGRES_2", "the second PostgreSQL server")
}

/// A client for the environment's kube-apiserver, from the kubeconfig that
/// `KUBECONFIG` names (never from `~/.kube` or a cluster the machine happens
/// to know).
pub async fn kube_client() -> kube::Client {
    let path = PathBuf::from(required("KUBECONFIG", "the Kubernetes API server"));
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read the kubeconfig {}: {e}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the kubeconfig {} is not usable: {e}", path.display()));
    kube::Client::try_from(config).expect("a kube client from the test kubeconfig")
}

/// A Kubernetes namespace of one test's own, named after `prefix`.
pub async fn create_namespace(client: &kube::Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let name = crate::unique_name(prefix);
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.clone());
    kube::Api::<Namespace>::all(client.clone())
        .create(&kube::api::PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
    name
}

/// Makes the Secret `name` in `namespace` hold `value` under `key`, by
/// server-side apply as `manager`, as `kubectl create secret` would.
pub async fn apply_secret(
    client: &kube::Client,
    namespace: &str,
    manager: &str,
    (name, key, value): (&str, &str, &str),
) {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.string_data = Some([(key.to_string(), value.to_string())].into());
    kube::Api::<Secret>::namespaced(client.clone(), namespace)
        .patch(name, &PatchParams::apply(manager), &Patch::Apply(&secret))
        .await
        .unwrap_or_else(|e| panic!("cannot make Secret {name}: {e}"));
}

/// A Postgres database of one test's own, created empty on the shared server.
/// [`TestDatabase::drop_database`] removes it at the end of a test that passed;
/// a failed test's database is left for a look.
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
    /// The maintenance database of its server.
    server: String,
}

impl TestDatabase {
    /// Creates a database named after `prefix` and a random suffix.
    pub async fn create(prefix: &str) -> TestDatabase {
        TestDatabase::create_on(&postgres_url(), prefix).await
    }

    /// The same on the server whose maintenance database `server` is.
    pub async fn create_on(server: &str, prefix: &str) -> TestDatabase {
        let name = crate::unique_name(prefix).replace('-', "_");
        let mut admin = admin_connection(server).await;
        admin
            // The name is ours (letters, digits and '_'), so it is safe in SQL.
            .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let url = with_database(server, &name);
        TestDatabase {
            name,
            url,
            server: server.to_string(),
        }
    }

    /// Its URL through another of the server's addresses: `server_url` is
    /// the server's maintenance database there (`NOTIF_NODE_POSTGRES`, say,
    /// where pods reach it).
    pub fn url_through(&self, server_url: &str) -> String {
        with_database(server_url, &self.name)
    }

    /// A small pool of connections to it.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {}: {e}", self.name))
    }

    /// Removes the database, closing whatever connections still use it.
    pub async fn drop_database(self) {
        let mut admin = admin_connection(&self.server).await;
        admin
            .execute(AssertSqlSafe(format!(
                r#"DROP DATABASE "{}" WITH (FORCE)"#,
                self.name
            )))
            .await
            .unwrap_or_else(|e| panic!("cannot drop the test database {}: {e}", self.name));
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"))
}

/// `url` with its path (the database) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let without_query = url.split('?').next().unwrap_or(url);
    let base = match without_query.rsplit_once('/') {
        Some((base, _)) if base.contains("://") && !base.ends_with('/') => base,
        _ => without_query,
    };
    format!("{base}/{database}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_replaces_the_path_of_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:24732/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:24732/t_1"
        );
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:24732", "t_1"),
            "postgres://postgres@127.0.0.1:24732/t_1"
        );
    }
}
