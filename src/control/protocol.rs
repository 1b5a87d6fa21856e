//! The control socket's wire format: one JSON request per line, one JSON response
//! per line.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    ShowNeighbors,
    ShowRoutes {
        vni: Option<u32>,
        route_type: Option<u8>,
    },
    ShowFib {
        vni: Option<u32>,
    },
    ShowVnis,
    ShowDuplicates {
        vni: Option<u32>,
    },
    ClearDuplicates {
        vni: Option<u32>,
        mac: Option<String>,
    },
    RouteAdd(RouteSpec),
    RouteDel(RouteSpec),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RouteKind {
    MacIp,
    Multicast,
}

/// A route to originate or withdraw, as the user wrote it (strings are parsed by
/// the daemon so that errors come back as messages).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteSpec {
    pub kind: RouteKind,
    pub vni: u32,
    pub mac: Option<String>,
    pub ip: Option<IpAddr>,
    pub rd: Option<String>,
    #[serde(default)]
    pub rts: Vec<String>,
    pub next_hop: Option<IpAddr>,
    pub mobility_seq: Option<u32>,
    #[serde(default)]
    pub sticky: bool,
}

/// `{"ok": true, "data": ...}` or `{"ok": false, "error": "..."}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn data(v: impl Serialize) -> Response {
        match serde_json::to_value(v) {
            Ok(v) => Response {
                ok: true,
                data: Some(v),
                error: None,
            },
            Err(e) => Response::error(format!("internal: {e}")),
        }
    }

    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            data: None,
            error: Some(msg.into()),
        }
    }
}
