//! Human-readable tables from the JSON views (what `show` prints without `--json`).
//!
//! Rendering works on the JSON the daemon sent, so the table can never show
//! something the documented schema does not carry.

use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

pub fn neighbors(data: &Value) -> String {
    let l = &data["local"];
    let mut out = format!(
        "BGP router identifier {}, local AS {}{}\nRIB: {} routes, {} paths, {} attribute sets\n\n",
        s(&l["router_id"]),
        s(&l["asn"]),
        if l["route_reflector"] == Value::Bool(true) {
            format!(", route reflector (cluster {})", s(&l["cluster_id"]))
        } else {
            String::new()
        },
        s(field(data, "/rib/destinations")),
        s(field(data, "/rib/paths")),
        s(field(data, "/rib/attr_sets")),
    );
    let rows: Vec<Vec<String>> = data["neighbors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    let up = n["uptime_secs"].as_u64().map_or("-".into(), uptime);
                    vec![
                        s(&n["address"]),
                        s(&n["remote_as"]),
                        s(&n["kind"]),
                        s(&n["state"]),
                        up,
                        s(&n["prefixes_received"]),
                        s(&n["prefixes_sent"]),
                        s(&n["messages_received"]),
                        s(&n["messages_sent"]),
                        match (&n["description"], &n["last_error"]) {
                            (Value::String(d), _) => d.clone(),
                            (_, Value::String(e)) if n["state"] != "Established" => e.clone(),
                            _ => String::new(),
                        },
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&table(
        &[
            "Neighbor", "AS", "Type", "State", "Up", "PfxRcd", "PfxSnt", "MsgRcvd", "MsgSent",
            "Note",
        ],
        &rows,
    ));
    out.push_str(&format!("\nTotal number of neighbors {}\n", rows.len()));
    out
}

fn uptime(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

pub fn routes(data: &Value) -> String {
    let Some(routes) = data["routes"].as_array() else {
        return "No routes.\n".into();
    };
    if routes.is_empty() {
        return "No routes.\n".into();
    }
    let mut rows = Vec::new();
    for r in routes {
        for p in r["paths"].as_array().into_iter().flatten() {
            let status = if p["best"] == Value::Bool(true) {
                "*>"
            } else {
                "* "
            };
            let mut comms: Vec<String> = p["ext_communities"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            if let Some(pm) = p["pmsi"].as_object() {
                comms.push(format!(
                    "PMSI:{}:{}",
                    s(&pm["tunnel_type_name"]),
                    s(&pm["endpoint"])
                ));
            }
            if r["duplicate"] == "frozen" {
                comms.push("DUPLICATE:frozen".into());
            }
            // The legend's symbols: "incomplete" must not show as "i" (IGP).
            let origin = match p["origin"].as_str() {
                Some("igp") => "i",
                Some("egp") => "e",
                _ => "?",
            };
            let path = match p["as_path"].as_str() {
                Some("") | None => origin.to_string(),
                Some(a) => format!("{a} {origin}"),
            };
            rows.push(vec![
                status.to_string(),
                s(&r["prefix"]),
                s(&r["rd"]),
                s(&r["vni"]),
                s(&p["next_hop"]),
                s(&p["peer"]),
                s(&p["local_pref"]),
                path,
                comms.join(" "),
            ]);
        }
    }
    let mut out =
        String::from("Status codes: * valid, > best;  Path origin: i IGP, e EGP, ? incomplete\n\n");
    out.push_str(&table(
        &[
            "",
            "Route",
            "RD",
            "VNI",
            "Next Hop",
            "From",
            "LocPrf",
            "Path",
            "Communities",
        ],
        &rows,
    ));
    let t2 = routes.iter().filter(|r| r["type"] == 2).count();
    let t3 = routes.iter().filter(|r| r["type"] == 3).count();
    out.push_str(&format!(
        "\nDisplayed {} routes ({} type-2, {} type-3) and {} paths\n",
        routes.len(),
        t2,
        t3,
        rows.len()
    ));
    out
}

pub fn vnis(data: &Value) -> String {
    let Some(vnis) = data["vnis"].as_array().filter(|v| !v.is_empty()) else {
        return "No VNIs: no vxlan device is a bridge port on this host.\n".into();
    };
    let rows: Vec<Vec<String>> = vnis
        .iter()
        .map(|v| {
            vec![
                s(&v["vni"]),
                s(&v["device"]),
                s(&v["bridge"]),
                s(&v["local"]),
                s(&v["dstport"]),
                if v["up"] == Value::Bool(true) {
                    "up".into()
                } else {
                    "down".into()
                },
                s(&v["local_macs"]),
                s(&v["local_ips"]),
                s(&v["remote_vteps"]),
                s(&v["remote_macs"]),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "VNI",
            "Device",
            "Bridge",
            "VTEP",
            "Port",
            "State",
            "LocalMACs",
            "LocalIPs",
            "RemoteVTEPs",
            "RemoteMACs",
        ],
        &rows,
    );
    for v in vnis {
        for p in v["problems"].as_array().into_iter().flatten() {
            out.push_str(&format!("warning: VNI {}: {}\n", s(&v["vni"]), s(p)));
        }
    }
    out
}

pub fn fib(data: &Value) -> String {
    let Some(vnis) = data["vnis"].as_array().filter(|v| !v.is_empty()) else {
        return "Nothing programmed.\n".into();
    };
    let mut out = String::new();
    for v in vnis {
        out.push_str(&format!(
            "VNI {}  device {}  bridge {}\n",
            s(&v["vni"]),
            match &v["device"] {
                Value::Null => "(none on this host: nothing programmed)".to_string(),
                d => s(d),
            },
            s(&v["bridge"])
        ));
        let flood: Vec<String> = v["flood"].as_array().into_iter().flatten().map(s).collect();
        out.push_str(&format!(
            "  flood list (head-end replication): {}\n",
            if flood.is_empty() {
                "-".to_string()
            } else {
                flood.join(", ")
            }
        ));
        let macs: Vec<Vec<String>> = v["remote_macs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| vec![format!("  {}", s(&m["mac"])), s(&m["vtep"])])
            .collect();
        if !macs.is_empty() {
            out.push_str(&table(&["  remote MAC", "VTEP"], &macs));
        }
        let sup: Vec<Vec<String>> = v["suppress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| vec![format!("  {}", s(&n["ip"])), s(&n["mac"])])
            .collect();
        if !sup.is_empty() {
            out.push_str(&table(
                &["  suppressed (ARP/ND answered locally)", "MAC"],
                &sup,
            ));
        }
        let dups = duplicate_rows(&v["duplicates"]);
        if !dups.is_empty() {
            out.push_str("  duplicate MACs, frozen (`vxbgp clear duplicates` thaws them):\n");
            let rows: Vec<Vec<String>> = dups
                .into_iter()
                .map(|mut r| {
                    r.remove(0);
                    r.insert(0, String::new());
                    r
                })
                .collect();
            out.push_str(&table(
                &["", "MAC", "moves", "frozen as", "frozen for", "thaws in"],
                &rows,
            ));
        }
        if v["failures"].as_u64().unwrap_or(0) > 0 {
            out.push_str(&format!(
                "  kernel refused {} operations (see the log)\n",
                s(&v["failures"])
            ));
        }
    }
    out
}

/// A nested field of a JSON answer; `Null` (shown as "-") when absent.
fn field<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or(&Value::Null)
}

fn duplicate_rows(list: &Value) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            vec![
                s(&d["vni"]),
                s(&d["mac"]),
                s(&d["moves"]),
                s(&d["frozen_as"]),
                format!("{} s", s(&d["frozen_for_secs"])),
                match &d["thaws_in_secs"] {
                    Value::Null => "when cleared".to_string(),
                    t => format!("{} s", s(t)),
                },
            ]
        })
        .collect()
}

const DUPLICATE_HEAD: [&str; 6] = ["VNI", "MAC", "moves", "frozen as", "frozen for", "thaws in"];

/// `vxbgp show duplicates`.
pub fn duplicates(data: &Value) -> String {
    let rows = duplicate_rows(&data["duplicates"]);
    if rows.is_empty() {
        return "No duplicate MACs.\n".into();
    }
    table(&DUPLICATE_HEAD, &rows)
}

/// `vxbgp clear duplicates`.
pub fn cleared(data: &Value) -> String {
    let rows = duplicate_rows(&data["cleared"]);
    if rows.is_empty() {
        return "No duplicate MACs to clear.\n".into();
    }
    format!("Cleared:\n{}", table(&DUPLICATE_HEAD, &rows))
}
