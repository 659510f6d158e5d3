//! The OpenAPI document as each deployment serves it: every public port
//! serves the generated document at `/v1/openapi.json`, every operation in
//! it is served, and every `/v1` route served is in it.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{Service, on_both};

/// The methods tried on each route.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

on_both!(the_public_ports_serve_the_document_of_what_they_serve);

async fn the_public_ports_serve_the_document_of_what_they_serve(service: Service) {
    let document = serde_json::to_value(dataplane::openapi::document()).expect("JSON");
    let ports: Vec<u16> = service
        .deployment
        .processes
        .iter()
        .filter(|role| role.name != "director")
        .map(|role| role.http)
        .collect();

    for port in &ports {
        let served: Value = service
            .http
            .get(format!("http://127.0.0.1:{port}/v1/openapi.json"))
            .send()
            .await
            .expect("the document is served")
            .json()
            .await
            .expect("JSON");
        assert!(
            served == document,
            "port {port} serves the generated document"
        );
    }

    // Unauthenticated requests, so that nothing is published or acknowledged:
    // a route answers 401 (or 200), an unknown path 404, a known path with
    // another method 405.
    let documented = operations(&document);
    for (path, method) in &documented {
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut answers = Vec::new();
        for port in &ports {
            answers.push(status(&service, *port, &method, path).await);
        }
        assert!(
            answers.iter().any(|s| is_served(*s)),
            "{method} {path} is documented and served: {answers:?}"
        );
    }
    for path in route_literals() {
        for method in METHODS {
            for port in &ports {
                let answer = status(&service, *port, &method, &path).await;
                assert!(
                    !is_served(answer) || documented.contains(&(path.clone(), method.to_string())),
                    "{method} {path} is served (port {port}: {answer}) but not in the OpenAPI document"
                );
            }
        }
    }
    service.finish().await;
}

fn is_served(status: StatusCode) -> bool {
    !matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    )
}

async fn status(service: &Service, port: u16, method: &Method, path: &str) -> StatusCode {
    service
        .http
        .request(method.clone(), format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .expect("an answer")
        .status()
}

/// The document's operations, as (path, method in capitals).
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    assert!(!paths.is_empty(), "the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item").keys();
            methods.map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect()
}

/// Every string literal in the dataplane's source that is a `/v1/` path: the
/// routes the routers are built with are among them, however they are built.
fn route_literals() -> BTreeSet<String> {
    let mut literals = BTreeSet::new();
    let mut directories = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory).expect("the source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                directories.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("a source file");
                for (_, rest) in source
                    .match_indices("\"/v1/")
                    .map(|(i, _)| source.split_at(i + 1))
                {
                    let literal: String = rest
                        .chars()
                        .take_while(|c| !matches!(c, '"' | '?'))
                        .collect();
                    literals.insert(literal);
                }
            }
        }
    }
    assert!(
        literals.contains("/v1/notifications"),
        "the scan finds the routes: {literals:?}"
    );
    literals
}

/// Schemathesis (from PyPI; `just tools` installs it) generates requests
/// from the served document, valid and not, for publishing and
/// acknowledging: no answer is a 5xx, every answer is one the document
/// gives, in the documented shape, and every request the document refuses
/// is refused. Its seed is random; a failure prints it, with a `curl` that
/// reproduces it.
#[tokio::test]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let service = Service::standalone().await;
    let document = format!("{}/v1/openapi.json", service.connect_url());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flow/schemathesis.toml");
    let publish = format!("Authorization: Bearer {}", crate::API_KEY);
    let ack = format!("Authorization: Bearer {}", crate::token("schemathesis"));
    for (operation, credentials) in [("publish", publish), ("ack", ack)] {
        let mut st = tokio::process::Command::new("st");
        // Hypothesis keeps a cache in the working directory.
        st.current_dir(std::env::temp_dir())
            .arg("--no-color")
            .arg("--config-file")
            .arg(&config)
            .args(["run", &document, "--include-operation-id", operation])
            .args(["--header", &credentials, "--max-examples", "100"]);
        let output = st
            .output()
            .await
            .expect("schemathesis runs (`just tools` installs it)");
        assert!(
            output.status.success(),
            "schemathesis found problems with `{operation}`:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    service.finish().await;
}
