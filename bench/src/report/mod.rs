//! Results and their three renderings: `report.json` (every run's raw numbers),
//! `report.md` (a table of medians per scenario, with ratios to FRR) and `plot.svg`.

pub mod md;
pub mod svg;

use std::path::Path;

use serde::Serialize;

use crate::reflector::Peer;
use crate::scenario::{Plan, Sample, Spec};
use crate::sys::Result;

/// When, with what, and how the bench ran.
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    pub date: String,
    pub command: String,
    pub versions: Vec<(String, String)>,
    pub plan: Plan,
    pub notes: Vec<String>,
    pub duration_s: f64,
}

/// The runs of one (scenario, parameter, reflector) point.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub scenario: &'static str,
    pub param: u64,
    pub peer: Peer,
    pub runs: Vec<Sample>,
    pub skipped: Option<String>,
}

impl Entry {
    /// Median of `key` over the successful runs.
    pub fn median(&self, key: &str) -> Option<f64> {
        median(
            self.runs
                .iter()
                .filter(|s| s.ok())
                .filter_map(|s| s.metrics.get(key).copied())
                .collect(),
        )
    }

    pub fn ok_runs(&self) -> usize {
        self.runs.iter().filter(|s| s.ok()).count()
    }
}

/// The median (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    let hi = *v.get(m)?;
    Some(if v.len() % 2 == 1 {
        hi
    } else {
        (v.get(m - 1)? + hi) / 2.0
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub meta: Meta,
    pub entries: Vec<Entry>,
}

impl Results {
    pub fn new(meta: Meta) -> Results {
        Results {
            meta,
            entries: Vec::new(),
        }
    }

    fn entry(&mut self, spec: &Spec, param: u64, peer: Peer) -> &mut Entry {
        let at = self
            .entries
            .iter()
            .position(|e| e.scenario == spec.name && e.param == param && e.peer == peer);
        if at.is_none() {
            self.entries.push(Entry {
                scenario: spec.name,
                param,
                peer,
                runs: Vec::new(),
                skipped: None,
            });
        }
        let at = at.unwrap_or(self.entries.len() - 1);
        match self.entries.get_mut(at) {
            Some(e) => e,
            None => unreachable!("entry {at} was found or pushed"),
        }
    }

    pub fn add(&mut self, spec: &Spec, param: u64, peer: Peer, s: Sample) {
        self.entry(spec, param, peer).runs.push(s);
    }

    pub fn skip(&mut self, spec: &Spec, param: u64, peer: Peer, why: &str) {
        self.entry(spec, param, peer).skipped = Some(why.to_string());
    }

    /// The peers to show: those of the plan, and the netlink floor if it was measured.
    pub fn peers(&self) -> Vec<Peer> {
        let mut p = self.meta.plan.peers.clone();
        if self.entries.iter().any(|e| e.peer == Peer::Floor) && !p.contains(&Peer::Floor) {
            p.push(Peer::Floor);
        }
        p
    }

    pub fn find(&self, scenario: &str, param: u64, peer: Peer) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.scenario == scenario && e.param == param && e.peer == peer)
    }

    /// Every failed run, as `(entry, run number, why)`.
    pub fn failures(&self) -> Vec<(&Entry, usize, &str)> {
        let mut v = Vec::new();
        for e in &self.entries {
            for (i, s) in e.runs.iter().enumerate() {
                if let Some(f) = &s.failure {
                    v.push((e, i + 1, f.as_str()));
                }
            }
        }
        v
    }

    /// Writes report.json, report.md and plot.svg into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let files = [
            ("report.json", json + "\n"),
            ("report.md", md::render(self)),
            ("plot.svg", svg::render(self)),
        ];
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }
}

/// A number for logs: up to 4 significant digits.
pub fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a UNIX time (the civil-from-days algorithm).
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reflector::Peer;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    fn results() -> Results {
        let plan = Plan {
            fanout: true,
            reconnect: false,
            reflect: true,
            kernel: false,
            k: vec![100, 200],
            n: vec![10_000],
            kernel_n: vec![],
            migration: false,
            moves: 20,
            runs: 3,
            peers: vec![Peer::Vxbgp, Peer::Frr, Peer::Gobgp],
            timeout_s: 120,
            gobgp_max_routes: 10_100,
            daemon_nofile: None,
            vni: 100,
            type2: 100,
            settle_ms: 1000,
        };
        let mut r = Results::new(Meta {
            date: utc(0),
            command: "vxbgp-bench".into(),
            versions: vec![("FRR".into(), "bgpd version 8.4.4".into())],
            plan,
            notes: vec![],
            duration_s: 1.0,
        });
        let sample = |t: f64| {
            let mut s = Sample::default();
            s.set("time_s", t);
            s.set("peak_rss_kib", 20480.0 * t);
            s
        };
        for (k, peer, t) in [
            (100, Peer::Vxbgp, 0.5),
            (100, Peer::Frr, 1.0),
            (200, Peer::Vxbgp, 1.0),
            (200, Peer::Frr, 4.0),
        ] {
            r.add(&crate::scenario::fanout::SPEC, k, peer, sample(t));
        }
        let mut failed = Sample::default();
        failed.fail("did not converge: client 198.19.1.5 holds 1 of 2 routes".into());
        r.add(&crate::scenario::fanout::SPEC, 200, Peer::Frr, failed);
        r.skip(&crate::scenario::fanout::SPEC, 200, Peer::Gobgp, "not run");
        r.add(
            &crate::scenario::reflect::SPEC,
            10_000,
            Peer::Vxbgp,
            sample(0.1),
        );
        r
    }

    #[test]
    fn markdown_tables_have_medians_ratios_and_failures() {
        let r = results();
        let md = md::render(&r);
        assert!(md.contains("| 100 | vxbgp | 500 ms | 0.50× |"), "{md}");
        assert!(md.contains("| 200 | FRR | 4.00 s | 1.00× |"), "{md}");
        assert!(md.contains("| 1/2 |"), "{md}");
        assert!(md.contains("| 200 | GoBGP | not run |"), "{md}");
        assert!(md.contains("run 2: did not converge: client 198.19.1.5 holds 1 of 2"));
        assert!(md.contains("## Reflection"));
        assert!(!md.contains("## Reconnect"));
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(json["entries"][0]["runs"][0]["metrics"]["time_s"], 0.5);
    }

    #[test]
    fn svg_has_a_panel_per_plot_with_data() {
        let svg = svg::render(&results());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("fan-out: time to converge"));
        assert!(svg.contains("reflection: peak RSS"));
        // vxbgp and FRR lines in fan-out, vxbgp alone (one point) in reflection.
        assert_eq!(svg.matches("<polyline").count(), 2 + 2 + 1 + 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let empty = Results::new(results().meta);
        assert!(svg::render(&empty).contains("no data"));
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
