//! `report.html`: the run's summary as charts, for people who will not read `summary.csv`.
//!
//! One self-contained file (inline CSS and SVG, no scripts, no fonts, no network), so it can be
//! attached to a CI job, mailed, or opened from disk years later and still render. Per attack:
//! bars for every rate with its 95% interval as a whisker, a breakdown by perturbation group,
//! and the headline rate's trend over the suite's past runs. Metrics that `--compare` found
//! significantly worse or better are marked in red or green.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::history::{Comparison, HistoryRow, SummaryRow, Verdict, Worse, worse_direction};
use crate::attack::engine::FailureExample;
use crate::score::metric::Metric;
use crate::score::stats::Rate;
use crate::suite::gate::GateOutcome;

pub struct HtmlReport<'a> {
    pub suite: &'a str,
    pub run_id: &'a str,
    /// Label and value lines for the header (models, corpora, machine, times).
    pub facts: &'a [(String, String)],
    /// This run's summary rows.
    pub rows: &'a [SummaryRow],
    /// Summary rows of this suite's runs, this one included, oldest first.
    pub trend: &'a [HistoryRow],
    /// The previous run's id, the comparison with it, and alpha.
    pub comparison: Option<(&'a str, &'a [Comparison], f64)>,
    /// Per attack: its gates and failure examples.
    pub jobs: &'a [JobExtras],
}

/// What the report shows of one attack beyond its summary rows.
pub struct JobExtras {
    pub attack: String,
    pub model: String,
    pub corpus: String,
    pub gates: Vec<GateOutcome>,
    pub failures: Vec<FailureExample>,
    /// Examples the suite asked for (fewer are shown when fewer failed).
    pub wanted: usize,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0 0 6px;font-size:22px;font-weight:600}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0 0;font-size:13px;color:#c9cfdb}
header dt{color:#8d97ab}
header dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace}
main{padding:18px 32px 40px;max-width:1200px}
.banner{padding:12px 16px;border-radius:6px;margin-bottom:18px;font-size:15px}
.ok{background:#e3f4e8;border:1px solid #9fd3ae}
.bad{background:#fde8e8;border:1px solid #f0a3a3}
.none{background:#eef0f4;border:1px solid #cdd2dc}
.banner ul{margin:6px 0 0;padding-left:20px;font-size:13px}
section.job{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:14px 18px;margin-bottom:18px}
section.job h2{margin:0;font-size:18px}
.sub{color:#5b6478;font-size:13px;margin:3px 0 10px}
.charts{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:10px 24px}
.charts svg{display:block;max-width:600px}
.charts h3{font-size:13px;margin:6px 0 2px;color:#3b4356;font-weight:600}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
table{border-collapse:collapse;font-size:12px;margin-top:6px}
td,th{padding:2px 8px;border-bottom:1px solid #eceef2;text-align:right}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
tr.regressed td{background:#fde8e8}
tr.improved td{background:#e3f4e8}
details summary{cursor:pointer;color:#3b4356;font-size:13px;margin-top:8px}
.legend{font-size:12px;color:#5b6478;margin-top:4px}
footer{color:#8d97ab;font-size:12px;padding:0 32px 24px}
.gates{margin:4px 0 10px;font-size:13px}
.gate{display:inline-block;padding:2px 8px;border-radius:10px;margin:0 6px 4px 0}
.gate.pass{background:#e3f4e8;border:1px solid #9fd3ae}
.gate.fail{background:#fde8e8;border:1px solid #f0a3a3;font-weight:600}
.examples h3{font-size:13px;margin:12px 0 4px;color:#3b4356;font-weight:600}
.examples table{width:100%;table-layout:fixed}
.examples td,.examples th{text-align:left;vertical-align:top;padding:4px 8px}
.examples td.text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-wrap:break-word}
.examples mark{background:#ffe08a;padding:0 1px}
.examples .none{font-size:12px;color:#5b6478;padding:4px 0}
";

/// The rate metrics shown as bars, in this order, with readable names.
const BAR_METRICS: [(&str, &str); 12] = [
    ("flip_rate", "flip rate (of perturbations)"),
    ("example_flip_rate", "example flip rate"),
    ("attack_success_rate", "attack success rate"),
    ("expected_direction_rate", "expected-direction rate"),
    ("ignored_rate", "ignored rate"),
    ("accuracy_before", "accuracy before"),
    ("accuracy_after", "accuracy after (every variant)"),
    ("perturbed_accuracy", "accuracy on perturbations"),
    (
        "true_preferred_affirmative",
        "true completion preferred, affirmative",
    ),
    (
        "true_preferred_negated",
        "true completion preferred, negated",
    ),
    ("top1_unchanged", "top-1 unchanged by negation"),
    ("answer_in_topk", "answer in affirmative top-k"),
];

/// The one rate a trend line follows per attack.
fn headline(kind: &str) -> &'static str {
    match kind {
        "negation" => "expected_direction_rate",
        "cloze" => "top1_unchanged",
        _ => "flip_rate",
    }
}

type JobKey = (String, String, String);

fn job_key(r: &SummaryRow) -> JobKey {
    (r.attack.clone(), r.model.clone(), r.corpus.clone())
}

pub fn render(report: &HtmlReport) -> String {
    let mut verdicts: BTreeMap<(JobKey, String, String), &Comparison> = BTreeMap::new();
    if let Some((_, comparisons, _)) = report.comparison {
        for c in comparisons {
            let k = &c.key;
            verdicts.insert(
                (
                    (k.attack.clone(), k.model.clone(), k.corpus.clone()),
                    k.group.clone(),
                    k.metric.clone(),
                ),
                c,
            );
        }
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>robust · {suite} · {run}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>Robustness report · {suite}</h1><dl>",
        suite = escape(report.suite),
        run = escape(report.run_id),
    );
    for (k, v) in report.facts {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    html.push_str("</dl></header>\n<main>\n");
    html.push_str(&banner(report.comparison));

    // Jobs in the order their rows appear.
    let mut order: Vec<JobKey> = Vec::new();
    for r in report.rows {
        let k = job_key(r);
        if !order.contains(&k) {
            order.push(k);
        }
    }
    for key in &order {
        let rows: Vec<&SummaryRow> = report.rows.iter().filter(|r| job_key(r) == *key).collect();
        let extras = report
            .jobs
            .iter()
            .find(|j| (&j.attack, &j.model, &j.corpus) == (&key.0, &key.1, &key.2));
        html.push_str(&job_section(key, &rows, report.trend, &verdicts, extras));
    }
    html.push_str(
        "</main><footer>Bars: share k/n with its 95% Wilson interval (whisker). \
         Red: significantly worse than the previous run; green: significantly better \
         (two-proportion z-test). Written by robust; the numbers are in summary.csv.</footer>\
         </body></html>\n",
    );
    html
}

fn banner(comparison: Option<(&str, &[Comparison], f64)>) -> String {
    let Some((prev, c, alpha)) = comparison else {
        return "<div class=\"banner none\">No earlier run of this suite to compare with; \
                the trend charts start here.</div>\n"
            .to_string();
    };
    let tested = c.iter().filter(|x| x.verdict != Verdict::NotTested).count();
    let worse: Vec<&Comparison> = c
        .iter()
        .filter(|x| x.verdict == Verdict::Regressed)
        .collect();
    let better = c.iter().filter(|x| x.verdict == Verdict::Improved).count();
    if worse.is_empty() {
        format!(
            "<div class=\"banner ok\"><b>No regression</b> against run {} — none of {tested} \
             metrics significantly worse (α = {alpha}); {better} significantly better.</div>\n",
            escape(prev)
        )
    } else {
        let mut s = format!(
            "<div class=\"banner bad\"><b>{} of {tested} metrics significantly worse</b> than \
             run {} (α = {alpha}); {better} better.<ul>",
            worse.len(),
            escape(prev)
        );
        for x in worse {
            let _ = write!(
                s,
                "<li>{}: {} → {} (p = {:.1e})</li>",
                escape(&x.key.to_string()),
                pct(x.previous),
                pct(x.current),
                x.p_value.unwrap_or(f64::NAN)
            );
        }
        s.push_str("</ul></div>\n");
        s
    }
}

fn pct(r: Option<Rate>) -> String {
    match r {
        Some(r) if r.n > 0 => format!("{:.1}% ({}/{})", 100.0 * r.value, r.k, r.n),
        _ => "–".into(),
    }
}

fn job_section(
    key: &JobKey,
    rows: &[&SummaryRow],
    trend: &[HistoryRow],
    verdicts: &BTreeMap<(JobKey, String, String), &Comparison>,
    extras: Option<&JobExtras>,
) -> String {
    let kind = rows.first().map_or("", |r| r.kind.as_str());
    let value = |group: &str, metric: &str| {
        rows.iter()
            .find(|r| r.group == group && r.metric == metric)
            .map(|r| r.value.clone())
    };
    let verdict_of = |group: &str, metric: &str| {
        verdicts
            .get(&(key.clone(), group.to_string(), metric.to_string()))
            .map(|c| c.verdict)
    };
    let mut s = format!(
        "<section class=\"job\"><h2>{}</h2><div class=\"sub\">{} · model {} · corpus {} · \
         {} sentences, {} attacked",
        escape(&key.0),
        escape(kind),
        escape(&key.1),
        escape(&key.2),
        value("all", "examples").unwrap_or_default(),
        value("all", "attacked").unwrap_or_default(),
    );
    let skipped: Vec<String> = rows
        .iter()
        .filter(|r| r.group == "all" && r.metric.starts_with("skipped["))
        .map(|r| {
            format!(
                "{} {}",
                r.value,
                r.metric
                    .trim_start_matches("skipped[")
                    .trim_end_matches(']')
            )
        })
        .collect();
    if !skipped.is_empty() {
        let _ = write!(s, " (skipped: {})", escape(&skipped.join(", ")));
    }
    if let Some(p) = rows.first() {
        let _ = write!(
            s,
            "<br>seed {} · {}",
            escape(&p.seed),
            escape(&p.parameters.replace(';', " · "))
        );
    }
    s.push_str("</div>");
    if let Some(x) = extras.filter(|x| !x.gates.is_empty()) {
        s.push_str("<div class=\"gates\">Gates: ");
        for g in &x.gates {
            let _ = write!(
                s,
                "<span class=\"gate {}\">{}</span>",
                if g.passed { "pass" } else { "fail" },
                escape(&g.describe())
            );
        }
        s.push_str("</div>");
    }
    s.push_str("<div class=\"charts\">");

    // Overall rates.
    let bars: Vec<Bar> = BAR_METRICS
        .iter()
        .filter_map(|(metric, label)| {
            let row = rows
                .iter()
                .find(|r| r.group == "all" && r.metric == *metric)?;
            Some(Bar {
                label: label.to_string(),
                rate: row.rate()?,
                verdict: verdict_of("all", metric),
                bad_high: worse_direction(kind, metric) == Some(Worse::Higher),
            })
        })
        .collect();
    s.push_str("<div><h3>Rates, all perturbations</h3>");
    s.push_str(&bar_chart(&bars));
    s.push_str("</div>");

    // Trend of the headline rate.
    let metric = headline(kind);
    let points: Vec<(String, Rate)> = {
        let mut seen: Vec<String> = Vec::new();
        let mut pts = Vec::new();
        for h in trend {
            if job_key(&h.row) == *key
                && h.row.group == "all"
                && h.row.metric == metric
                && !seen.contains(&h.run_id)
                && let Some(rate) = h.row.rate()
            {
                seen.push(h.run_id.clone());
                pts.push((h.finished_at.clone(), rate));
            }
        }
        let skip = pts.len().saturating_sub(30);
        pts.into_iter().skip(skip).collect()
    };
    let _ = write!(
        s,
        "<div><h3>Trend: {} over the last {} run{}</h3>",
        escape(&metric.replace('_', " ")),
        points.len(),
        if points.len() == 1 { "" } else { "s" }
    );
    s.push_str(&trend_chart(&points));
    s.push_str("</div>");

    // Breakdowns: per group (entity-swap direction, negation insert/remove, ...) and per class.
    let mut groups: Vec<Bar> = rows
        .iter()
        .filter(|r| r.group != "all" && r.metric == metric)
        .filter_map(|r| {
            Some(Bar {
                label: r.group.clone(),
                rate: r.rate()?,
                verdict: verdict_of(&r.group, metric),
                bad_high: worse_direction(kind, metric) == Some(Worse::Higher),
            })
        })
        .collect();
    let classes: Vec<Bar> = rows
        .iter()
        .filter(|r| r.group == "all")
        .filter_map(|r| {
            Some(Bar {
                label: format!("gold {}", Metric::class_of(&r.metric)?),
                rate: r.rate()?,
                verdict: verdict_of("all", &r.metric),
                bad_high: worse_direction(kind, &r.metric) == Some(Worse::Higher),
            })
        })
        .collect();
    if !groups.is_empty() {
        groups.truncate(16);
        let _ = write!(
            s,
            "<div><h3>{} by perturbation group</h3>{}</div>",
            escape(&metric.replace('_', " ")),
            bar_chart(&groups)
        );
    }
    if !classes.is_empty() {
        let _ = write!(
            s,
            "<div><h3>Flip rate by class</h3>{}</div>",
            bar_chart(&classes)
        );
    }
    s.push_str("</div>");
    if let Some(x) = extras.filter(|x| x.wanted > 0) {
        s.push_str(&examples_table(x));
    }

    // Every row, for those who want the numbers.
    s.push_str(
        "<details><summary>All metrics</summary><table><tr><th>group</th><th>metric</th>\
         <th>k</th><th>n</th><th>value</th><th>95% CI</th><th>p</th><th>vs previous</th></tr>",
    );
    for r in rows {
        let v = verdict_of(&r.group, &r.metric);
        let class = match v {
            Some(Verdict::Regressed) => " class=\"regressed\"",
            Some(Verdict::Improved) => " class=\"improved\"",
            _ => "",
        };
        let ci = if r.ci_low.is_empty() {
            String::new()
        } else {
            format!("[{}, {}]", r.ci_low, r.ci_high)
        };
        let vs = match v {
            Some(Verdict::Regressed) => "worse",
            Some(Verdict::Improved) => "better",
            Some(Verdict::Same) => "same",
            _ => "",
        };
        let _ = write!(
            s,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{vs}</td></tr>",
            escape(&r.group),
            escape(&r.metric),
            escape(&r.k),
            escape(&r.n),
            escape(&r.value),
            escape(&ci),
            escape(&r.p_value),
        );
    }
    s.push_str("</table></details></section>\n");
    s
}

/// The attack's clearest failures: original and perturbed text with the words that differ
/// marked, gold label, and both answers with their probabilities.
fn examples_table(x: &JobExtras) -> String {
    let mut s = format!(
        "<div class=\"examples\"><h3>Failure examples (the {} clearest)</h3>",
        x.wanted
    );
    if x.failures.is_empty() {
        s.push_str("<div class=\"none\">No failures to show.</div></div>");
        return s;
    }
    s.push_str(
        "<table><tr><th style=\"width:4em\">line</th><th>original</th><th>perturbed</th>\
         <th style=\"width:16em\">answers</th></tr>",
    );
    for f in x.failures.iter().take(x.wanted) {
        let (orig, pert) = mark_changes(&f.original_text, &f.perturbed_text);
        let gold = f
            .gold
            .as_ref()
            .map_or_else(String::new, |g| format!("gold <b>{}</b><br>", escape(g)));
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"text\">{orig}</td><td class=\"text\">{pert}<br>\
             <small>{}</small></td><td>{gold}{} ({:.1}%) → <b>{}</b> ({:.1}%)<br>\
             <small>{}</small></td></tr>",
            f.line,
            escape(&f.detail),
            escape(&f.original_label),
            100.0 * f.original_confidence,
            escape(&f.perturbed_label),
            100.0 * f.perturbed_confidence,
            escape(&f.why),
        );
    }
    s.push_str("</table></div>");
    s
}

/// Both texts, escaped, with the words that are not in their longest common subsequence
/// wrapped in `<mark>`: inserted, removed, renamed or moved words stand out.
pub fn mark_changes(original: &str, perturbed: &str) -> (String, String) {
    let a: Vec<&str> = original.split_whitespace().collect();
    let b: Vec<&str> = perturbed.split_whitespace().collect();
    // Quadratic LCS: sentences are short, and the report shows a handful.
    let (n, m) = (a.len().min(400), b.len().min(400));
    let mut table = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut keep_a, mut keep_b) = (vec![false; a.len()], vec![false; b.len()]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            keep_a[i] = true;
            keep_b[j] = true;
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    let render = |words: &[&str], keep: &[bool]| {
        words
            .iter()
            .zip(keep)
            .map(|(w, k)| {
                if *k {
                    escape(w)
                } else {
                    format!("<mark>{}</mark>", escape(w))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (render(&a, &keep_a), render(&b, &keep_b))
}

struct Bar {
    label: String,
    rate: Rate,
    verdict: Option<Verdict>,
    /// Whether a higher value is the bad direction (colours the bar).
    bad_high: bool,
}

const CHART_W: f64 = 600.0;
const LABEL_W: f64 = 200.0;
const VALUE_W: f64 = 215.0;

/// Horizontal bars on a 0–100% axis with the Wilson interval as a whisker.
fn bar_chart(bars: &[Bar]) -> String {
    let row_h = 24.0;
    let plot_w = CHART_W - LABEL_W - VALUE_W;
    let height = row_h * bars.len() as f64 + 22.0;
    let x = |v: f64| LABEL_W + plot_w * v.clamp(0.0, 1.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" \
         viewBox=\"0 0 {CHART_W} {height}\" role=\"img\">"
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let tx = x(tick);
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"0\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e3e6ec\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#8d97ab\" \
             text-anchor=\"middle\">{}%</text>",
            height - 18.0,
            height - 6.0,
            (tick * 100.0) as u32
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64 * row_h + 3.0;
        let fill = match b.verdict {
            Some(Verdict::Regressed) => "#d64545",
            Some(Verdict::Improved) => "#2f9e57",
            _ if b.bad_high => "#e59a3c",
            _ => "#4a78c2",
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2330\" \
             text-anchor=\"end\">{}</text>",
            LABEL_W - 8.0,
            y + 13.0,
            escape(&b.label)
        );
        if b.rate.n > 0 {
            let (x0, xv, lo, hi) = (x(0.0), x(b.rate.value), x(b.rate.ci_low), x(b.rate.ci_high));
            let mid = y + 8.0;
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{fill}\" \
                 rx=\"2\"><title>{}</title></rect>\
                 <line x1=\"{lo:.1}\" y1=\"{mid:.1}\" x2=\"{hi:.1}\" y2=\"{mid:.1}\" \
                 stroke=\"#1d2330\" stroke-width=\"1.5\"/>\
                 <line x1=\"{lo:.1}\" y1=\"{:.1}\" x2=\"{lo:.1}\" y2=\"{:.1}\" stroke=\"#1d2330\" \
                 stroke-width=\"1.5\"/>\
                 <line x1=\"{hi:.1}\" y1=\"{:.1}\" x2=\"{hi:.1}\" y2=\"{:.1}\" stroke=\"#1d2330\" \
                 stroke-width=\"1.5\"/>",
                (xv - x0).max(0.5),
                escape(&b.rate.display_percent()),
                mid - 5.0,
                mid + 5.0,
                mid - 5.0,
                mid + 5.0,
            );
        }
        let mark = match b.verdict {
            Some(Verdict::Regressed) => " ▲ worse",
            Some(Verdict::Improved) => " ▼ better",
            _ => "",
        };
        let text = if b.rate.n == 0 {
            "n/a (0/0)".to_string()
        } else {
            format!(
                "{:.1}% [{:.1}, {:.1}] {}/{}",
                100.0 * b.rate.value,
                100.0 * b.rate.ci_low,
                100.0 * b.rate.ci_high,
                b.rate.k,
                b.rate.n
            )
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{}\">{}{}</text>",
            LABEL_W + plot_w + 6.0,
            y + 12.0,
            if b.verdict == Some(Verdict::Regressed) {
                "#d64545"
            } else {
                "#3b4356"
            },
            escape(&text),
            mark
        );
    }
    s.push_str("</svg>");
    s
}

/// The headline rate per run: points with interval whiskers, joined by a line, on an axis
/// zoomed to the data (with a little room) so night-to-night movement is visible.
fn trend_chart(points: &[(String, Rate)]) -> String {
    let (w, h) = (CHART_W, 190.0);
    let (left, right, top, bottom) = (48.0, 16.0, 10.0, 40.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    let usable: Vec<&(String, Rate)> = points.iter().filter(|(_, r)| r.n > 0).collect();
    if usable.is_empty() {
        s.push_str(
            "<text x=\"10\" y=\"20\" font-size=\"12\" fill=\"#5b6478\">no data</text></svg>",
        );
        return s;
    }
    let lo = usable.iter().map(|(_, r)| r.ci_low).fold(1.0, f64::min);
    let hi = usable.iter().map(|(_, r)| r.ci_high).fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.15).max(0.02);
    let (y0, y1) = ((lo - pad).max(0.0), (hi + pad).min(1.0));
    let plot_h = h - top - bottom;
    let plot_w = w - left - right;
    let y = |v: f64| top + plot_h * (1.0 - (v - y0) / (y1 - y0));
    let n = usable.len();
    let x = |i: usize| {
        if n == 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    for k in 0..=4 {
        let v = y0 + (y1 - y0) * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e3e6ec\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#8d97ab\" \
             text-anchor=\"end\">{:.1}%</text>",
            w - right,
            left - 6.0,
            yy + 3.0,
            100.0 * v
        );
    }
    let path: Vec<String> = usable
        .iter()
        .enumerate()
        .map(|(i, (_, r))| format!("{:.1},{:.1}", x(i), y(r.value)))
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#4a78c2\" stroke-width=\"2\"/>",
        path.join(" ")
    );
    let label_every = n.div_ceil(6);
    for (i, (when, r)) in usable.iter().enumerate() {
        let (xx, yv) = (x(i), y(r.value));
        let last = i + 1 == n;
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#4a78c2\" \
             stroke-opacity=\"0.45\" stroke-width=\"6\" stroke-linecap=\"round\"/>\
             <circle cx=\"{xx:.1}\" cy=\"{yv:.1}\" r=\"{}\" fill=\"{}\"><title>{}: {}</title></circle>",
            y(r.ci_low),
            y(r.ci_high),
            if last { "5" } else { "3.5" },
            if last { "#1d2330" } else { "#4a78c2" },
            escape(when),
            escape(&r.display_percent())
        );
        if i % label_every == 0 || last {
            // "2025-01-31T02:10:00Z" -> "01-31 02:10": runs are nightly, often several a day
            // while someone debugs, so the time matters as much as the day.
            let short = match (when.get(5..10), when.get(11..16)) {
                (Some(d), Some(t)) => format!("{d} {t}"),
                _ => when.clone(),
            };
            let anchor = match (i, last) {
                (_, true) if n > 1 => "end",
                (0, _) if n > 1 => "start",
                _ => "middle",
            };
            let _ = write!(
                s,
                "<text x=\"{xx:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#5b6478\" \
                 text-anchor=\"{anchor}\">{}</text>",
                h - bottom + 14.0,
                escape(&short)
            );
        }
    }
    if let Some((_, r)) = usable.last() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#1d2330\" \
             text-anchor=\"middle\">latest: {}</text>",
            left + plot_w / 2.0,
            h - 6.0,
            escape(&r.display_percent())
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(attack: &str, group: &str, metric: &str, k: u64, n: u64) -> SummaryRow {
        let r = Rate::new(k, n);
        SummaryRow {
            attack: attack.into(),
            kind: "shuffle".into(),
            group: group.into(),
            metric: metric.into(),
            denominator: String::new(),
            k: k.to_string(),
            n: n.to_string(),
            value: format!("{:.6}", r.value),
            ci_low: format!("{:.6}", r.ci_low),
            ci_high: format!("{:.6}", r.ci_high),
            p_value: String::new(),
            model: "m<1>".into(),
            model_sha256: String::new(),
            corpus: "c&d.tsv".into(),
            corpus_sha256: String::new(),
            seed: "1".into(),
            robust_version: "0".into(),
            parameters: "samples=3".into(),
        }
    }

    #[test]
    fn renders_a_self_contained_page_with_escaped_text() {
        let rows = vec![
            row("shuffle<script>", "all", "flip_rate", 10, 100),
            row("shuffle<script>", "all", "accuracy_before", 0, 0),
            row("shuffle<script>", "x", "flip_rate", 3, 30),
        ];
        let trend: Vec<HistoryRow> = (0..3)
            .map(|i| HistoryRow {
                run_id: format!("r{i}"),
                suite: "s".into(),
                finished_at: format!("2025-01-0{}T00:00:00Z", i + 1),
                row: row("shuffle<script>", "all", "flip_rate", 10 + i, 100),
            })
            .collect();
        let facts = vec![("run".to_string(), "r2".to_string())];
        let page = render(&HtmlReport {
            suite: "s",
            run_id: "r2",
            facts: &facts,
            rows: &rows,
            trend: &trend,
            comparison: None,
            jobs: &[],
        });
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(!page.contains("<script"), "text is escaped");
        assert!(page.contains("shuffle&lt;script&gt;") && page.contains("c&amp;d.tsv"));
        for external in ["http://", "https://", "src=", "@import", "url("] {
            let hits = page.matches(external).count();
            let allowed = if external == "http://" {
                page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
            } else {
                0
            };
            assert_eq!(hits, allowed, "no external resource: {external}");
        }
        assert!(
            page.contains("10.0% [5.5, 17.4] 10/100"),
            "bar label with interval"
        );
        assert!(page.contains("over the last 3 runs"));
        assert!(page.contains("n/a (0/0)"));
    }

    #[test]
    fn failure_examples_are_escaped_and_marked() {
        let (a, b) = mark_changes("the <b>film</b> is good", "the <b>film</b> is not good");
        assert_eq!(a, "the &lt;b&gt;film&lt;/b&gt; is good");
        assert_eq!(b, "the &lt;b&gt;film&lt;/b&gt; is <mark>not</mark> good");
        let x = JobExtras {
            attack: "neg".into(),
            model: "m".into(),
            corpus: "c".into(),
            gates: Vec::new(),
            failures: vec![FailureExample {
                line: 7,
                group: "insert".into(),
                gold: Some("positive".into()),
                original_text: "Tom & <i>Jerry</i> rock".into(),
                perturbed_text: "Tom & <i>Jerry</i> do not rock".into(),
                detail: "insert not".into(),
                original_label: "positive".into(),
                original_confidence: 0.9,
                perturbed_label: "positive".into(),
                perturbed_confidence: 0.8,
                why: "still the gold label after the perturbation".into(),
            }],
            wanted: 5,
        };
        let html = examples_table(&x);
        assert!(!html.contains("<i>"), "{html}");
        assert!(html.contains("<mark>do</mark> <mark>not</mark>"), "{html}");
        assert!(
            html.contains("Tom &amp; &lt;i&gt;Jerry&lt;/i&gt;"),
            "{html}"
        );
    }
}
