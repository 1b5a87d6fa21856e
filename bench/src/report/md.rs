//! `report.md`: a header with what ran where, then per scenario a table of medians.

use std::fmt::Write;

use super::{Entry, Results};
use crate::reflector::Peer;
use crate::scenario::{Metric, Spec, Unit, SPECS};

/// A metric value as shown in a table.
pub fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        _ if v == 0.0 => "0".into(),
        Unit::Seconds if v < 0.01 => format!("{:.2} ms", v * 1e3),
        Unit::Seconds if v < 1.0 => format!("{:.0} ms", v * 1e3),
        Unit::Seconds if v < 100.0 => format!("{v:.2} s"),
        Unit::Seconds => format!("{v:.0} s"),
        Unit::Kib => {
            let mib = v / 1024.0;
            if mib < 10.0 {
                format!("{mib:.1} MiB")
            } else {
                format!("{mib:.0} MiB")
            }
        }
        Unit::Bytes => format!("{v:.0} B"),
        Unit::Count if v == v.trunc() => format!("{v:.0}"),
        Unit::Count => format!("{v:.1}"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 10.0 {
                format!("{r:.0}×")
            } else if r >= 0.1 {
                format!("{r:.2}×")
            } else {
                format!("{r:.3}×")
            }
        }
        _ => "—".into(),
    }
}

fn cell(e: Option<&Entry>, m: &Metric) -> String {
    match e.and_then(|e| e.median(m.key)) {
        Some(v) => fmt_value(m.unit, v),
        None => "—".into(),
    }
}

fn table(out: &mut String, r: &Results, spec: &Spec) {
    let mut params: Vec<u64> = r
        .entries
        .iter()
        .filter(|e| e.scenario == spec.name)
        .map(|e| e.param)
        .collect();
    params.sort_unstable();
    params.dedup();
    if params.is_empty() {
        return;
    }
    let peers: Vec<Peer> = r.peers();
    // Ratios to the netlink floor too, for the metrics the floor has (kernel scenario).
    let floor_has = |key: &str| {
        r.entries
            .iter()
            .any(|e| e.scenario == spec.name && e.peer == Peer::Floor && e.median(key).is_some())
    };
    let _ = writeln!(out, "## {}\n\n{}\n", spec.title, spec.about);
    let mut head = format!("| {} | {} |", spec.param, spec.role);
    let mut rule = String::from("|---:|---|");
    for m in spec.metrics {
        let _ = write!(head, " {} |", m.header);
        rule.push_str("---:|");
        if m.ratio {
            let _ = write!(head, " {} /FRR |", m.header);
            rule.push_str("---:|");
        }
        if m.ratio && floor_has(m.key) {
            let _ = write!(head, " {} /floor |", m.header);
            rule.push_str("---:|");
        }
    }
    head.push_str(" runs ok |");
    rule.push_str("---:|");
    let _ = writeln!(out, "{head}\n{rule}");
    for &p in &params {
        let frr = r.find(spec.name, p, Peer::Frr);
        let floor = r.find(spec.name, p, Peer::Floor);
        for &peer in &peers {
            let e = r.find(spec.name, p, peer);
            let mut row = format!("| {p} | {} |", peer.title());
            if let Some(why) = e.and_then(|e| e.skipped.as_ref()) {
                let cols = spec.metrics.len()
                    + spec.metrics.iter().filter(|m| m.ratio).count()
                    + spec
                        .metrics
                        .iter()
                        .filter(|m| m.ratio && floor_has(m.key))
                        .count();
                let _ = write!(row, " {why} |");
                row.push_str(&" |".repeat(cols));
                let _ = writeln!(out, "{row}");
                continue;
            }
            let Some(entry) = e else { continue };
            for m in spec.metrics {
                let _ = write!(row, " {} |", cell(e, m));
                if m.ratio {
                    let _ = write!(
                        row,
                        " {} |",
                        ratio(entry.median(m.key), frr.and_then(|f| f.median(m.key)))
                    );
                }
                if m.ratio && floor_has(m.key) {
                    let _ = write!(
                        row,
                        " {} |",
                        ratio(entry.median(m.key), floor.and_then(|f| f.median(m.key)))
                    );
                }
            }
            let _ = write!(row, " {}/{} |", entry.ok_runs(), entry.runs.len());
            let _ = writeln!(out, "{row}");
        }
    }
    let fails: Vec<String> = r
        .failures()
        .into_iter()
        .filter(|(e, _, _)| e.scenario == spec.name)
        .map(|(e, run, why)| {
            format!(
                "- {} = {}, {}, run {run}: {}",
                spec.param,
                e.param,
                e.peer.title(),
                why.lines().next().unwrap_or("")
            )
        })
        .collect();
    if !fails.is_empty() {
        let _ = writeln!(
            out,
            "\nFailed runs (not in the medians):\n\n{}",
            fails.join("\n")
        );
    }
    let notes: Vec<String> = r
        .entries
        .iter()
        .filter(|e| e.scenario == spec.name)
        .flat_map(|e| {
            e.runs.iter().enumerate().flat_map(move |(i, s)| {
                s.notes.iter().map(move |n| {
                    format!(
                        "- {} = {}, {}, run {}: {n}",
                        spec.param,
                        e.param,
                        e.peer.title(),
                        i + 1
                    )
                })
            })
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n\n{}", notes.join("\n"));
    }
    out.push('\n');
}

/// The whole report.
pub fn render(r: &Results) -> String {
    let mut out = String::from("# vxbgp benchmark: BGP EVPN, vxbgp side by side with FRR\n\n");
    let _ = writeln!(out, "- date: {}", r.meta.date);
    let _ = writeln!(out, "- command: `{}`", r.meta.command);
    let _ = writeln!(
        out,
        "- wall time of the whole run: {:.0} s",
        r.meta.duration_s
    );
    for (k, v) in &r.meta.versions {
        let _ = writeln!(out, "- {k}: {v}");
    }
    let p = &r.meta.plan;
    let _ = writeln!(
        out,
        "- runs per point: {} (fresh daemons each run; medians of the successful runs); timeout per phase: {} s",
        p.runs, p.timeout_s
    );
    for n in &r.meta.notes {
        let _ = writeln!(out, "- {n}");
    }
    out.push_str(
        "\nRatios are this daemon's median over FRR's (below 1: less than FRR), and in the \
         kernel scenario also over the netlink floor's.\n\n",
    );
    for spec in SPECS {
        table(&mut out, r, spec);
    }
    out.push_str("![plot](plot.svg)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(fmt_value(Unit::Seconds, 0.0042), "4.20 ms");
        assert_eq!(fmt_value(Unit::Seconds, 0.25), "250 ms");
        assert_eq!(fmt_value(Unit::Seconds, 7.5), "7.50 s");
        assert_eq!(fmt_value(Unit::Kib, 2048.0), "2.0 MiB");
        assert_eq!(fmt_value(Unit::Kib, 204_800.0), "200 MiB");
        assert_eq!(fmt_value(Unit::Bytes, 123.4), "123 B");
        assert_eq!(ratio(Some(1.0), Some(4.0)), "0.25×");
        assert_eq!(ratio(Some(1.0), None), "—");
    }
}
