//! `plot.svg`, written as text: one log-log panel per plotted metric of each scenario
//! (time and peak RSS against K for fan-out, against N for reflection), one line per
//! reflector through the medians.

use std::fmt::Write;

use super::Results;
use crate::reflector::Peer;
use crate::scenario::{Unit, SPECS};

const PANEL_W: f64 = 470.0;
const PANEL_H: f64 = 330.0;
const LEFT: f64 = 75.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 35.0;
const BOTTOM: f64 = 50.0;

fn color(p: Peer) -> &'static str {
    match p {
        Peer::Vxbgp => "#1f77b4",
        Peer::Frr => "#d62728",
        Peer::Gobgp => "#2ca02c",
        Peer::Floor => "#7f7f7f",
    }
}

/// One panel's data: per reflector, (parameter, value) points.
struct Panel {
    title: String,
    xname: &'static str,
    unit: Unit,
    lines: Vec<(Peer, Vec<(f64, f64)>)>,
}

fn panels(r: &Results) -> Vec<Panel> {
    let mut out = Vec::new();
    for spec in SPECS {
        for &(key, title) in spec.plots {
            let unit = spec
                .metrics
                .iter()
                .find(|m| m.key == key)
                .map_or(Unit::Count, |m| m.unit);
            let mut lines = Vec::new();
            for peer in r.peers() {
                let mut pts: Vec<(f64, f64)> = r
                    .entries
                    .iter()
                    .filter(|e| e.scenario == spec.name && e.peer == peer)
                    .filter_map(|e| Some((e.param as f64, e.median(key)?)))
                    .filter(|&(x, y)| x > 0.0 && y > 0.0)
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                if !pts.is_empty() {
                    lines.push((peer, pts));
                }
            }
            if !lines.is_empty() {
                out.push(Panel {
                    title: title.to_string(),
                    xname: spec.param,
                    unit,
                    lines,
                });
            }
        }
    }
    out
}

/// Decades covering `lo..=hi` (at least one).
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let a = lo.log10().floor();
    let mut b = hi.log10().ceil();
    if b <= a {
        b = a + 1.0;
    }
    (a, b)
}

fn tick_label(unit: Unit, v: f64) -> String {
    let n = if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let digits = (-v.log10()).ceil().max(0.0) as usize;
        format!("{v:.digits$}")
    };
    match unit {
        Unit::Seconds => format!("{n} s"),
        Unit::Kib => format!("{n} MiB"),
        Unit::Bytes => format!("{n} B"),
        Unit::Count => n,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn panel(out: &mut String, p: &Panel, ox: f64, oy: f64) {
    let scale = |v: f64| if p.unit == Unit::Kib { v / 1024.0 } else { v };
    let xs: Vec<f64> = p
        .lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(|q| q.0))
        .collect();
    let ys: Vec<f64> = p
        .lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(|q| scale(q.1)))
        .collect();
    let (xmin, xmax) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (ymin, ymax) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    // x: a little room around the data; y: whole decades.
    let (lx0, lx1) = if xmax > xmin {
        let pad = (xmax.log10() - xmin.log10()) * 0.06;
        (xmin.log10() - pad, xmax.log10() + pad)
    } else {
        (xmin.log10() - 0.5, xmin.log10() + 0.5)
    };
    let (ly0, ly1) = decades(ymin, ymax);
    let w = PANEL_W - LEFT - RIGHT;
    let h = PANEL_H - TOP - BOTTOM;
    let px = |x: f64| ox + LEFT + (x.log10() - lx0) / (lx1 - lx0) * w;
    let py = |y: f64| oy + TOP + h - (y.log10() - ly0) / (ly1 - ly0) * h;
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"##,
        ox + LEFT,
        oy + 20.0,
        esc(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#444"/>"##,
        ox + LEFT,
        oy + TOP
    );
    let mut d = ly0;
    while d <= ly1 + 1e-9 {
        let v = 10f64.powf(d);
        let y = py(v);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            ox + LEFT,
            ox + LEFT + w,
            ox + LEFT - 6.0,
            y + 4.0,
            tick_label(p.unit, v)
        );
        d += 1.0;
    }
    let mut ticks = xs.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for x in ticks {
        let xp = px(x);
        let _ = writeln!(
            out,
            r##"<line x1="{xp:.1}" y1="{:.1}" x2="{xp:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xp:.1}" y="{:.1}" font-size="11" text-anchor="middle">{x:.0}</text>"##,
            oy + TOP,
            oy + TOP + h,
            oy + TOP + h + 16.0
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{} (log)</text>"##,
        ox + LEFT + w / 2.0,
        oy + TOP + h + 36.0,
        p.xname
    );
    for (peer, pts) in &p.lines {
        let c = color(*peer);
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(scale(y))))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"##,
            path.join(" ")
        );
        for &(x, y) in pts {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"><title>{} {}={x:.0}: {}</title></circle>"##,
                px(x),
                py(scale(y)),
                peer.title(),
                p.xname,
                crate::report::md::fmt_value(p.unit, y)
            );
        }
    }
}

pub fn render(r: &Results) -> String {
    let ps = panels(r);
    let cols = 2.0;
    let rows = ((ps.len() as f64) / cols).ceil().max(1.0);
    let width = PANEL_W * cols;
    let height = PANEL_H * rows + 40.0;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"##
    );
    if ps.is_empty() {
        out.push_str(r##"<text x="20" y="30" font-size="14">no data</text>"##);
        out.push('\n');
    }
    for (i, p) in ps.iter().enumerate() {
        let ox = (i % 2) as f64 * PANEL_W;
        let oy = (i / 2) as f64 * PANEL_H;
        panel(&mut out, p, ox, oy);
    }
    // Legend.
    let ly = height - 18.0;
    for (i, peer) in r.peers().iter().enumerate() {
        let x = LEFT + i as f64 * 120.0;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.0}" y1="{ly:.0}" x2="{:.0}" y2="{ly:.0}" stroke="{}" stroke-width="3"/><text x="{:.0}" y="{:.0}" font-size="12">{}</text>"##,
            x + 24.0,
            color(*peer),
            x + 30.0,
            ly + 4.0,
            peer.title()
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decade_ranges() {
        assert_eq!(decades(0.05, 3.0), (-2.0, 1.0));
        assert_eq!(decades(10.0, 10.0), (1.0, 2.0));
        assert_eq!(tick_label(Unit::Seconds, 0.01), "0.01 s");
        assert_eq!(tick_label(Unit::Kib, 100.0), "100 MiB");
    }
}
