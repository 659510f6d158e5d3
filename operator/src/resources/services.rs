//! The Services: publishers reach the receivers and clients the distributors
//! through them; every component's admin port is on its Service for scraping.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Component, owned_meta, ports, selector};
use crate::crd::{NotificationCluster, ServiceType};

/// The Service of `component`.
pub fn service(nc: &NotificationCluster, component: Component) -> Service {
    let mut service_ports = vec![port("admin", ports::ADMIN)];
    if component != Component::Director {
        service_ports.insert(0, port("http", ports::HTTP));
    }
    let type_ = match component {
        Component::Distributor => nc.spec.distributor.service_type,
        _ => ServiceType::ClusterIP,
    };
    Service {
        metadata: owned_meta(nc, component.object_name(nc), Some(component)),
        spec: Some(ServiceSpec {
            type_: Some(service_type(type_).into()),
            selector: Some(selector(nc, component)),
            ports: Some(service_ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn service_type(type_: ServiceType) -> &'static str {
    match type_ {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    }
}

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: number,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}
