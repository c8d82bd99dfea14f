//! Hand-written SVG charts: line charts (with optional bands, markers, categorical x axis)
//! and bar charts (with optional error bars and threshold lines). Output is plain markup with
//! `<title>` tooltips; no script.

use std::fmt::Write;

use super::esc;

pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

const W: f64 = 560.0;
const H: f64 = 360.0;
const ML: f64 = 66.0;
const MR: f64 = 18.0;
const MT: f64 = 40.0;
const MB: f64 = 56.0;

#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub min: f64,
    pub max: f64,
    /// Tick labels as percentages (value × 100).
    pub percent: bool,
    /// Categorical labels for x = 0, 1, 2, … (overrides numeric ticks).
    pub categories: Option<Vec<String>>,
}

impl Axis {
    pub fn new(label: &str, min: f64, max: f64) -> Axis {
        Axis {
            label: label.into(),
            min,
            max,
            percent: false,
            categories: None,
        }
    }
    pub fn pct(mut self) -> Axis {
        self.percent = true;
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: String,
    pub dashed: bool,
    /// (x, lo, hi) interval band.
    pub band: Vec<(f64, f64, f64)>,
    /// Draw a circle at each point (with a tooltip).
    pub markers: bool,
}

#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Draw the y = x reference line (grey, dashed) with this legend name.
    pub diagonal: Option<String>,
    pub id: String,
}

/// "Nice" tick step for a range (1, 2, 2.5, 5 × 10^k), aiming at about `target` ticks.
pub fn nice_step(range: f64, target: f64) -> f64 {
    if range.is_nan() || range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / target;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nf = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nf * mag
}

fn ticks(min: f64, max: f64) -> Vec<f64> {
    let step = nice_step(max - min, 5.0);
    let mut t = (min / step).ceil() * step;
    let mut out = Vec::new();
    while t <= max + step * 1e-9 && out.len() < 20 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(v: f64, percent: bool, step: f64) -> String {
    let (v, step) = if percent {
        (v * 100.0, step * 100.0)
    } else {
        (v, step)
    };
    let mut dec = 0usize;
    while dec < 6
        && ((step * 10f64.powi(dec as i32)).round() - step * 10f64.powi(dec as i32)).abs() > 1e-6
    {
        dec += 1;
    }
    let s = format!("{v:.dec$}", dec = dec.min(6));
    if percent {
        format!("{s}%")
    } else {
        s
    }
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let t = if self.x1 > self.x0 {
            (x - self.x0) / (self.x1 - self.x0)
        } else {
            0.5
        };
        ML + t.clamp(-0.02, 1.02) * (W - ML - MR)
    }
    fn py(&self, y: f64) -> f64 {
        let t = if self.y1 > self.y0 {
            (y - self.y0) / (self.y1 - self.y0)
        } else {
            0.5
        };
        H - MB - t.clamp(-0.02, 1.02) * (H - MT - MB)
    }
}

fn open_svg(out: &mut String, id: &str, title: &str) {
    let _ = write!(
        out,
        r##"<svg class="chart" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/><text class="title" x="{cx}" y="22" text-anchor="middle" font-size="15" font-weight="600">{t}</text>"##,
        id = esc(id),
        t = esc(title),
        cx = W / 2.0
    );
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn axes(out: &mut String, f: &Frame, x: &Axis, y: &Axis) {
    let (l, r, t, b) = (ML, W - MR, MT, H - MB);
    // y ticks + grid
    let ys = ticks(y.min, y.max);
    let ystep = nice_step(y.max - y.min, 5.0);
    for v in &ys {
        let py = f.py(*v);
        let _ = write!(
            out,
            r##"<line x1="{l}" x2="{r}" y1="{py:.1}" y2="{py:.1}" stroke="#e5e5e5"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11">{lab}</text>"##,
            tx = l - 6.0,
            ty = py + 4.0,
            lab = esc(&fmt_tick(*v, y.percent, ystep))
        );
    }
    match &x.categories {
        Some(cats) => {
            let every = (cats.len() / 12).max(1);
            let room = (W - ML - MR) / cats.len().max(1) as f64;
            let horizontal =
                cats.iter().all(|c| c.chars().count() as f64 * 6.0 <= room) || room >= 90.0;
            for (i, c) in cats.iter().enumerate() {
                if i % every != 0 {
                    continue;
                }
                let px = f.px(i as f64);
                if horizontal {
                    let max = ((room / 6.0) as usize).max(4);
                    let _ = write!(
                        out,
                        r##"<line x1="{px:.1}" x2="{px:.1}" y1="{b}" y2="{b2}" stroke="#444"/><text x="{px:.1}" y="{ty}" text-anchor="middle" font-size="11"><title>{full}</title>{lab}</text>"##,
                        b2 = b + 4.0,
                        ty = b + 17.0,
                        full = esc(c),
                        lab = esc(&short(c, max))
                    );
                    continue;
                }
                let _ = write!(
                    out,
                    r##"<line x1="{px:.1}" x2="{px:.1}" y1="{b}" y2="{b2}" stroke="#444"/><text x="{px:.1}" y="{ty}" text-anchor="end" font-size="10" transform="rotate(-35 {px:.1} {ty})">{lab}</text>"##,
                    b2 = b + 4.0,
                    ty = b + 14.0,
                    lab = esc(c)
                );
            }
        }
        None => {
            let xstep = nice_step(x.max - x.min, 5.0);
            for v in ticks(x.min, x.max) {
                let px = f.px(v);
                let _ = write!(
                    out,
                    r##"<line x1="{px:.1}" x2="{px:.1}" y1="{t}" y2="{b}" stroke="#f0f0f0"/><line x1="{px:.1}" x2="{px:.1}" y1="{b}" y2="{b2}" stroke="#444"/><text x="{px:.1}" y="{ty}" text-anchor="middle" font-size="11">{lab}</text>"##,
                    b2 = b + 4.0,
                    ty = b + 17.0,
                    lab = esc(&fmt_tick(v, x.percent, xstep))
                );
            }
        }
    }
    let _ = write!(
        out,
        r##"<line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="#444"/><line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="#444"/><text class="xlabel" x="{cx}" y="{xy}" text-anchor="middle" font-size="12">{xl}</text><text class="ylabel" x="{yx}" y="{cy}" text-anchor="middle" font-size="12" transform="rotate(-90 {yx} {cy})">{yl}</text>"##,
        cx = (l + r) / 2.0,
        xy = H - 8.0,
        xl = esc(&x.label),
        yx = 16.0,
        cy = (t + b) / 2.0,
        yl = esc(&y.label)
    );
}

/// Where the legend box goes inside the plot area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    TopLeft,
    TopRight,
    BottomRight,
}

fn legend(out: &mut String, items: &[(String, String, bool)], pos: Legend) {
    if items.is_empty() {
        return;
    }
    let width = items
        .iter()
        .map(|(n, _, _)| n.chars().count())
        .max()
        .unwrap_or(4) as f64
        * 6.4
        + 34.0;
    let h = items.len() as f64 * 17.0 + 6.0;
    let x = if pos == Legend::TopLeft {
        ML + 8.0
    } else {
        W - MR - width - 6.0
    };
    let y = if pos == Legend::BottomRight {
        H - MB - h - 8.0
    } else {
        MT + 6.0
    };
    let _ = write!(
        out,
        r##"<g class="legend"><rect x="{x}" y="{y}" width="{width:.0}" height="{h}" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>"##
    );
    for (i, (name, color, dashed)) in items.iter().enumerate() {
        let ly = y + 14.0 + i as f64 * 17.0;
        let dash = if *dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<line x1="{a}" x2="{b}" y1="{yy}" y2="{yy}" stroke="{c}" stroke-width="2.5"{dash}/><text x="{tx}" y="{ty}" font-size="11">{n}</text>"##,
            a = x + 6.0,
            b = x + 26.0,
            yy = ly - 4.0,
            c = esc(color),
            tx = x + 30.0,
            ty = ly,
            n = esc(name)
        );
    }
    out.push_str("</g>");
}

/// Render a line chart.
pub fn line_chart(c: &LineChart, legend_pos: Legend) -> String {
    let mut out = String::new();
    open_svg(&mut out, &c.id, &c.title);
    let f = Frame {
        x0: c.x.min,
        x1: c.x.max,
        y0: c.y.min,
        y1: c.y.max,
    };
    axes(&mut out, &f, &c.x, &c.y);
    let mut items = Vec::new();
    if let Some(name) = &c.diagonal {
        let _ = write!(
            out,
            r##"<polyline class="reference" points="{:.1},{:.1} {:.1},{:.1}" fill="none" stroke="#999" stroke-dasharray="4 4"/>"##,
            f.px(c.x.min.max(c.y.min)),
            f.py(c.x.min.max(c.y.min)),
            f.px(c.x.max.min(c.y.max)),
            f.py(c.x.max.min(c.y.max))
        );
        items.push((name.clone(), "#999".to_string(), true));
    }
    if c.series.iter().all(|s| s.points.is_empty()) {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="13" fill="#888">no data for this estimator</text>"##,
            (ML + W - MR) / 2.0,
            (MT + H - MB) / 2.0
        );
    }
    for s in &c.series {
        if s.band.len() >= 2 {
            let mut d = String::new();
            for (i, &(x, _, hi)) in s.band.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1} ",
                    if i == 0 { "M" } else { "L" },
                    f.px(x),
                    f.py(hi)
                );
            }
            for &(x, lo, _) in s.band.iter().rev() {
                let _ = write!(d, "L{:.1},{:.1} ", f.px(x), f.py(lo));
            }
            d.push('Z');
            let _ = write!(
                out,
                r##"<path class="band" d="{d}" fill="{}" fill-opacity="0.15" stroke="none"/>"##,
                esc(&s.color)
            );
        }
        if s.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<polyline class="series" data-series="{n}" points="{p}" fill="none" stroke="{c}" stroke-width="2" stroke-linejoin="round"{dash}><title>{n}</title></polyline>"##,
            n = esc(&s.name),
            p = pts.join(" "),
            c = esc(&s.color)
        );
        if s.markers {
            for &(x, y) in &s.points {
                let xl = match &c.x.categories {
                    Some(cats) => cats.get(x as usize).cloned().unwrap_or_default(),
                    None => format!("{x:.4}"),
                };
                let _ = write!(
                    out,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"><title>{n}: {xl} → {y:.4}</title></circle>"##,
                    f.px(x),
                    f.py(y),
                    c = esc(&s.color),
                    n = esc(&s.name),
                    xl = esc(&xl)
                );
            }
        }
        items.push((s.name.clone(), s.color.clone(), s.dashed));
    }
    legend(&mut out, &items, legend_pos);
    out.push_str("</svg>");
    out
}

#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub color: String,
    /// Optional interval drawn as an error bar.
    pub interval: Option<(f64, f64)>,
}

/// Horizontal reference line in a bar chart.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub value: f64,
    pub label: String,
    pub color: String,
}

/// Vertical bars, categorical x axis.
pub fn bar_chart(
    id: &str,
    title: &str,
    y: &Axis,
    x_label: &str,
    bars: &[Bar],
    thresholds: &[Threshold],
) -> String {
    let mut out = String::new();
    open_svg(&mut out, id, title);
    let cats: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let n = bars.len().max(1) as f64;
    let xa = Axis {
        label: x_label.into(),
        min: -0.6,
        max: n - 0.4,
        percent: false,
        categories: Some(cats),
    };
    let f = Frame {
        x0: xa.min,
        x1: xa.max,
        y0: y.min,
        y1: y.max,
    };
    axes(&mut out, &f, &xa, y);
    let bw = ((W - ML - MR) / n * 0.6).min(60.0);
    for b in bars {
        let i = cats_index(bars, b);
        let cx = f.px(i as f64);
        let (ya, yb) = (f.py(0.0f64.clamp(y.min, y.max)), f.py(b.value));
        let (top, h) = if yb < ya {
            (yb, ya - yb)
        } else {
            (ya, yb - ya)
        };
        let _ = write!(
            out,
            r##"<rect class="bar" x="{:.1}" y="{top:.1}" width="{bw:.1}" height="{h:.1}" fill="{c}"><title>{l}: {v:.4}</title></rect>"##,
            cx - bw / 2.0,
            c = esc(&b.color),
            l = esc(&b.label),
            v = b.value
        );
        if let Some((lo, hi)) = b.interval {
            let _ = write!(
                out,
                r##"<path class="errorbar" d="M{x:.1},{a:.1} L{x:.1},{b:.1} M{l:.1},{a:.1} L{r:.1},{a:.1} M{l:.1},{b:.1} L{r:.1},{b:.1}" stroke="#222" stroke-width="1.5" fill="none"/>"##,
                x = cx,
                a = f.py(lo),
                b = f.py(hi),
                l = cx - 6.0,
                r = cx + 6.0
            );
        }
    }
    let mut items = Vec::new();
    for t in thresholds {
        let py = f.py(t.value);
        let _ = write!(
            out,
            r##"<polyline class="threshold" points="{ml},{py:.1} {mr},{py:.1}" stroke="{c}" stroke-dasharray="6 3" fill="none"/>"##,
            ml = ML,
            mr = W - MR,
            c = esc(&t.color)
        );
        items.push((t.label.clone(), t.color.clone(), true));
    }
    legend(&mut out, &items, Legend::TopRight);
    out.push_str("</svg>");
    out
}

fn cats_index(bars: &[Bar], b: &Bar) -> usize {
    bars.iter().position(|x| std::ptr::eq(x, b)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.0, 5.0), 0.2);
        assert_eq!(nice_step(0.2, 5.0), 0.05);
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(ticks(0.0, 1.0).len(), 6);
        assert_eq!(fmt_tick(0.05, true, 0.05), "5%");
        assert_eq!(fmt_tick(0.025, true, 0.025), "2.5%");
        assert_eq!(fmt_tick(0.6, false, 0.2), "0.6");
    }
}
