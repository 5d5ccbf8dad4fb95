//! A self-contained SVG chart of a report: latency percentiles per second (log scale) above,
//! deliveries per second and joined connections below (each with its own scale, left and
//! right, and a legend), with the run's phases marked. The p99.9 line is drawn first and
//! dashed, so p99 stays visible where the two meet.
//!
//! Kept out: the numbers themselves (`report`).

use std::fmt::Write as _;

use crate::report::Report;

const W: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const PANEL: f64 = 220.0;
const TOP1: f64 = 50.0;
const TOP2: f64 = TOP1 + PANEL + 60.0;
const H: f64 = TOP2 + PANEL + 50.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn polyline(points: &[(f64, f64)], colour: &str, dash: &str, width: f64) -> String {
    if points.is_empty() {
        return String::new();
    }
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!(
        r#"<polyline fill="none" stroke="{colour}" stroke-width="{width}" stroke-dasharray="{dash}" points="{}"/>"#,
        pts.join(" ")
    )
}

/// A legend entry: a short line in the series' style and its name.
fn legend(x: f64, y: f64, colour: &str, dash: &str, label: &str) -> String {
    format!(
        r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}"/><text x="{}" y="{}">{label}</text>"#,
        x + 18.0,
        x + 22.0,
        y + 4.0
    )
}

/// `1234` → `1.2k`, `2500000` → `2.5M`: short enough for a scale's margin.
fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub fn svg(report: &Report) -> String {
    let metric = if report
        .series
        .iter()
        .any(|i| i.latency.contains_key("delivery"))
    {
        "delivery"
    } else {
        "connect"
    };
    let end = report
        .series
        .iter()
        .map(|i| i.elapsed)
        .fold(report.phases.end, f64::max)
        .max(1.0);
    let x = |t: f64| LEFT + (t / end) * (W - LEFT - RIGHT);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{} — {} latency per second (ms, log scale)</text>"#,
        escape(&report.scenario.name),
        metric
    );

    // Latency panel: decades from 0.1 ms up to the worst p99.9 seen.
    let worst = report
        .series
        .iter()
        .filter_map(|i| i.latency.get(metric))
        .map(|h| h.ms_at(0.999))
        .fold(1.0, f64::max);
    let top_decade = worst.log10().ceil().max(0.0);
    let bottom_decade = -1.0;
    let y1 = |ms: f64| {
        let l = ms.max(0.1).log10().clamp(bottom_decade, top_decade);
        TOP1 + PANEL - (l - bottom_decade) / (top_decade - bottom_decade) * PANEL
    };
    let mut d = bottom_decade;
    while d <= top_decade {
        let ms = 10f64.powf(d);
        let y = y1(ms);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            if ms < 1.0 {
                format!("{ms:.1}")
            } else {
                format!("{ms:.0}")
            }
        );
        d += 1.0;
    }
    // Drawn from the highest percentile down, the top one dashed and the others over it.
    let lines = [
        (0.999, "#d62728", "p99.9", "5 3", 1.4),
        (0.99, "#ff7f0e", "p99", "", 2.2),
        (0.5, "#1f77b4", "p50", "", 1.8),
    ];
    for (k, (q, colour, label, dash, width)) in lines.iter().enumerate() {
        let pts: Vec<(f64, f64)> = report
            .series
            .iter()
            .filter_map(|i| {
                i.latency
                    .get(metric)
                    .map(|h| (x(i.elapsed), y1(h.ms_at(*q))))
            })
            .collect();
        s += &polyline(&pts, colour, dash, *width);
        s += &legend(
            LEFT + 10.0 + k as f64 * 80.0,
            TOP1 - 12.0,
            colour,
            dash,
            label,
        );
    }

    // Throughput panel.
    let max_deliv = report
        .series
        .iter()
        .map(|i| i.deliveries)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_joined = report
        .series
        .iter()
        .map(|i| i.joined)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y2 = |v: f64, max: f64| TOP2 + PANEL - v / max * PANEL;
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{}" font-size="15" font-weight="bold">throughput and connections per second</text><rect x="{LEFT}" y="{TOP2}" width="{}" height="{PANEL}" fill="none" stroke="#ccc"/>"##,
        TOP2 - 28.0,
        W - LEFT - RIGHT
    );
    s += &legend(
        LEFT + 10.0,
        TOP2 - 12.0,
        "#2ca02c",
        "",
        "deliveries/s (left scale)",
    );
    s += &legend(
        LEFT + 220.0,
        TOP2 - 12.0,
        "#9467bd",
        "4 3",
        "joined connections (right scale)",
    );
    // Scales: deliveries/s on the left, joined connections on the right, in quarters.
    for quarter in 0..=4 {
        let f = f64::from(quarter) / 4.0;
        let y = y2(f, 1.0);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#2ca02c">{}</text><text x="{}" y="{:.1}" fill="#9467bd">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            compact(max_deliv * f),
            W - RIGHT + 3.0,
            y + 4.0,
            compact(max_joined * f),
        );
    }
    let deliv: Vec<(f64, f64)> = report
        .series
        .iter()
        .map(|i| (x(i.elapsed), y2(i.deliveries as f64, max_deliv)))
        .collect();
    let joined: Vec<(f64, f64)> = report
        .series
        .iter()
        .map(|i| (x(i.elapsed), y2(i.joined as f64, max_joined)))
        .collect();
    s += &polyline(&deliv, "#2ca02c", "", 1.6);
    s += &polyline(&joined, "#9467bd", "4 3", 1.6);

    // Phases and the time axis, across both panels.
    let p = report.phases;
    let marks = [
        Some((p.ramp_end, "ramp done")),
        (p.publish_until > p.publish_from).then_some((p.publish_from, "posting")),
        (p.publish_until > p.publish_from).then_some((p.publish_until, "posting ends")),
        p.storm_at.map(|t| (t, "storm")),
    ];
    // Labels alternate between two rows so that close marks stay readable.
    for (i, (t, label)) in marks.into_iter().flatten().enumerate() {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP1}" y2="{1}" stroke="#888" stroke-dasharray="2 3"/><text x="{2:.1}" y="{3}" fill="#555">{label}</text>"##,
            x(t),
            TOP2 + PANEL,
            x(t) + 3.0,
            TOP1 + 12.0 + 14.0 * (i % 2) as f64
        );
    }
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0]
        .into_iter()
        .find(|st| end / st <= 12.0)
        .unwrap_or(1200.0);
    let mut t = 0.0;
    while t <= end {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{t:.0}s</text>"#,
            x(t),
            TOP2 + PANEL + 18.0
        );
        t += step;
    }
    s += "</svg>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{histogram::Latency, recorder::Interval, scenario::Scenario};

    #[test]
    fn draws_percentile_lines_and_escapes_names() {
        let mut h = Latency::default();
        for v in [500, 1500, 20_000] {
            h.record_us(v);
        }
        let series: Vec<Interval> = (1..=5)
            .map(|t| Interval {
                elapsed: t as f64,
                deliveries: 100 * t,
                joined: 10,
                latency: [("delivery".to_owned(), h.clone())].into(),
                ..Interval::default()
            })
            .collect();
        let report: crate::report::Report = serde_json::from_value(serde_json::json!({
            "format": 1, "tool_version": "t",
            "scenario": Scenario::parse("name='<a&b>'\nurl='ws://127.0.0.1:1/s'\nconnections=1\nduration_secs=1", &[]).unwrap(),
            "generators": [], "phases": {"ramp_end": 1.0, "publish_from": 2.0, "publish_until": 4.0, "storm_at": null, "end": 5.0},
            "totals": crate::report::Totals::default(), "loss": crate::seq_tracker::SeqCounts::default(),
            "viewers_tracked": 0, "storm": null, "errors": {}, "disconnects": {}, "percentiles": {},
            "histograms": {}, "series": series, "watched": []
        }))
        .unwrap();
        let svg = svg(&report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(svg.contains("&lt;a&amp;b&gt;"));
        assert!(svg.contains("posting ends"));
        // p99 is drawn over p99.9, which is dashed; both panels have legends and scales.
        let p999 = svg.find("stroke-dasharray=\"5 3\" points").unwrap();
        let p99 = svg.find("stroke=\"#ff7f0e\" stroke-width=\"2.2\"").unwrap();
        assert!(p999 < p99, "p99.9 first, p99 on top");
        assert!(svg.contains("deliveries/s (left scale)"));
        assert!(svg.contains("joined connections (right scale)"));
        assert!(
            svg.contains(">500<") && svg.contains(">10<"),
            "the scales' top labels"
        );
    }
}
