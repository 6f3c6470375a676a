//! The markup: [`super::view`]'s page as one HTML string.
//!
//! Only presentation lives here (layout, colours, number formats, the SVG geometry of the
//! charts), so a change of look touches this file and `style.css` and cannot change which
//! numbers the report shows. Every piece of text from the run (attack, model and corpus
//! names, corpus sentences, labels, timestamps) passes through [`escape`] on its way into
//! the markup, here and nowhere else: a corpus is untrusted input, and a sentence holding
//! `<script>` must come out as text. (The sentence counts in a section's subtitle are
//! numbers robust wrote itself, and go in as they are.)

use std::fmt::Write;

use super::escape;
use super::view::{
    Banner, Bar, FailureRow, Failures, Job, MetricRow, OverviewRow, Page, TrendPoint, Word,
    job_anchor,
};
use crate::report::history::Verdict;
use crate::score::stats::Rate;

/// The page's CSS, inline so that the report stays one self-contained file. The file holds
/// plain CSS (no comments) because every byte of it lands in every report.
const STYLE: &str = include_str!("style.css");

/// The whole page.
pub(super) fn page(page: &Page) -> String {
    let mut html = String::new();
    // The newline puts the CSS on lines of its own in the page source; `style.css` itself
    // starts with its first rule.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>robust · {suite} · {run}</title><style>\n{STYLE}</style></head><body>\n\
         <header><h1>Robustness report · {suite}</h1><dl>",
        suite = escape(page.suite),
        run = escape(page.run_id),
    );
    for (k, v) in page.facts {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    html.push_str("</dl></header>\n<main>\n");
    html.push_str(&banner(&page.banner));
    html.push_str(&overview(&page.overview));
    for (i, job) in page.jobs.iter().enumerate() {
        html.push_str(&job_section(job, &job_anchor(i)));
    }
    html.push_str(
        "</main><footer>Bars: share k/n with its 95% Wilson interval (whisker). \
         Red: significantly worse than the previous run; green: significantly better \
         (two-proportion z-test). Written by robust; the numbers are in summary.csv.</footer>\
         </body></html>\n",
    );
    html
}

fn banner(banner: &Banner) -> String {
    let Banner::Compared {
        previous_run,
        alpha,
        tested,
        improved,
        regressed,
    } = banner
    else {
        return "<div class=\"banner none\">No earlier run of this suite to compare with; \
                the trend charts start here.</div>\n"
            .to_string();
    };
    if regressed.is_empty() {
        return format!(
            "<div class=\"banner ok\"><b>No regression</b> against run {} — none of {tested} \
             metrics significantly worse (α = {alpha}); {improved} significantly better.</div>\n",
            escape(previous_run)
        );
    }
    let mut s = format!(
        "<div class=\"banner bad\"><b>{} of {tested} metrics significantly worse</b> than \
         run {} (α = {alpha}); {improved} better.<ul>",
        regressed.len(),
        escape(previous_run)
    );
    for x in regressed {
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

/// The first screen: every job's headline rate with its interval, its gates and its change
/// since the previous run, one row each, linking to the job's section.
fn overview(rows: &[OverviewRow]) -> String {
    let mut s = String::from(
        "<section class=\"overview\"><h2>Overview</h2><table><tr><th>attack</th>\
         <th>model · corpus</th><th>headline</th><th class=\"num\">rate</th>\
         <th class=\"num\">95% CI</th><th>gates</th>\
         <th>since previous run</th></tr>",
    );
    for r in rows {
        let (rate, interval) = match r.rate {
            Some(rate) if rate.n > 0 => (
                format!("{:.1}% ({}/{})", 100.0 * rate.value, rate.k, rate.n),
                format!("[{:.1}, {:.1}]", 100.0 * rate.ci_low, 100.0 * rate.ci_high),
            ),
            Some(rate) => (format!("– (0/{})", rate.n), "–".into()),
            None => ("–".into(), "–".into()),
        };
        let gates = match r.gates {
            (_, 0) => "<td class=\"muted\">none</td>".to_string(),
            (passed, total) if passed == total => {
                format!("<td><span class=\"gate pass\">{passed}/{total} pass</span></td>")
            }
            (passed, total) => format!(
                "<td><span class=\"gate fail\">{} of {total} failed</span></td>",
                total - passed
            ),
        };
        let change = match r.change {
            None => "<td class=\"muted\">first run</td>".to_string(),
            Some((previous, verdict)) => {
                let (class, word) = match verdict {
                    Verdict::Regressed => ("worse", "worse"),
                    Verdict::Improved => ("better", "better"),
                    Verdict::Same => ("", "no significant change"),
                    Verdict::NotTested => ("", "not tested"),
                };
                format!(
                    "<td class=\"{class}\">{} → {} · {word}</td>",
                    pct(previous),
                    pct(r.rate)
                )
            }
        };
        let _ = write!(
            s,
            "<tr><td><a href=\"#{}\">{}</a> <span class=\"muted\">{}</span></td>\
             <td>{} · {}</td><td>{}{}</td><td class=\"num\">{rate}</td>\
             <td class=\"num\">{interval}</td>{gates}{change}</tr>",
            r.anchor,
            escape(r.attack),
            escape(r.kind),
            escape(r.model),
            escape(r.corpus),
            escape(&r.metric.replace('_', " ")),
            if r.bad_high {
                " <span class=\"muted\">(lower is better)</span>"
            } else {
                ""
            },
        );
    }
    s.push_str("</table></section>\n");
    s
}

fn pct(r: Option<Rate>) -> String {
    match r {
        Some(r) if r.n > 0 => format!("{:.1}% ({}/{})", 100.0 * r.value, r.k, r.n),
        _ => "–".into(),
    }
}

fn job_section(job: &Job, anchor: &str) -> String {
    let mut s = format!(
        "<section class=\"job\" id=\"{anchor}\"><h2>{}</h2><div class=\"sub\">{} · model {} · corpus {} · \
         {} sentences, {} attacked",
        escape(job.attack),
        escape(job.kind),
        escape(job.model),
        escape(job.corpus),
        // Counts robust wrote itself: numbers, with nothing to escape.
        job.sentences.unwrap_or_default(),
        job.attacked.unwrap_or_default(),
    );
    if !job.skipped.is_empty() {
        let skipped: Vec<String> = job
            .skipped
            .iter()
            .map(|(count, reason)| escape(&format!("{count} {reason}")))
            .collect();
        let _ = write!(s, " (skipped: {})", skipped.join(", "));
    }
    let parameters: Vec<String> = job.parameters.iter().map(|p| escape(p)).collect();
    let _ = write!(
        s,
        "<br>seed {} · {}",
        escape(job.seed),
        parameters.join(" · ")
    );
    s.push_str("</div>");
    if !job.gates.is_empty() {
        s.push_str("<div class=\"gates\">Gates: ");
        for g in job.gates {
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

    s.push_str("<div><h3>Rates, all perturbations</h3>");
    s.push_str(&bar_chart(&job.rates));
    s.push_str("</div>");

    let metric = job.headline.replace('_', " ");
    let _ = write!(
        s,
        "<div><h3>Trend: {} over the last {} run{}</h3>",
        escape(&metric),
        job.trend.len(),
        if job.trend.len() == 1 { "" } else { "s" }
    );
    s.push_str(&trend_chart(&job.trend));
    s.push_str("</div>");

    if !job.groups.is_empty() {
        let _ = write!(
            s,
            "<div><h3>{} by perturbation group</h3>{}</div>",
            escape(&metric),
            bar_chart(&job.groups)
        );
    }
    if !job.classes.is_empty() {
        let _ = write!(
            s,
            "<div><h3>Flip rate by class</h3>{}</div>",
            bar_chart(&job.classes)
        );
    }
    s.push_str("</div>");
    if let Some(failures) = &job.failures {
        s.push_str(&failures_table(failures));
    }
    if !job.trigger_words.is_empty() {
        s.push_str(&trigger_words_table(
            job.trigger_words,
            job.trigger_lexicons,
        ));
    }

    // Every row, for those who want the numbers.
    s.push_str(
        "<details><summary>All metrics</summary><table><tr><th>group</th><th>metric</th>\
         <th>k</th><th>n</th><th>value</th><th>95% CI</th><th>p</th><th>vs previous</th></tr>",
    );
    for m in &job.metrics {
        s.push_str(&metric_row(m));
    }
    s.push_str("</table></details></section>\n");
    s
}

fn metric_row(m: &MetricRow) -> String {
    let r = m.row;
    let class = match m.verdict {
        Some(Verdict::Regressed) => " class=\"regressed\"",
        Some(Verdict::Improved) => " class=\"improved\"",
        _ => "",
    };
    // A row that is not a rate has no interval; its cell stays empty rather than "[, ]".
    let ci = if r.ci_low.is_empty() {
        String::new()
    } else {
        format!("[{}, {}]", r.ci_low, r.ci_high)
    };
    let vs = match m.verdict {
        Some(Verdict::Regressed) => "worse",
        Some(Verdict::Improved) => "better",
        Some(Verdict::Same) => "same",
        _ => "",
    };
    format!(
        "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{vs}</td></tr>",
        escape(&r.group),
        escape(&r.metric),
        escape(&r.k),
        escape(&r.n),
        escape(&r.value),
        escape(&ci),
        escape(&r.p_value),
    )
}

/// Each trigger word with the lexicons that list it, its polarity score and the model's
/// answer on it alone, so that a reader sees what the trigger is made of.
pub(super) fn trigger_words_table(words: &[super::TriggerWord], lexicons: &[String]) -> String {
    let mut s = format!(
        "<div class=\"examples\"><h3>Trigger words</h3><p><small>Looked up, in every \
         inflection, in {} opinion lexicons: {}.</small></p><table><tr><th>word</th>\
         <th>lexicons that list it</th><th>polarity</th><th>the model on the word alone</th></tr>",
        lexicons.len(),
        escape(&lexicons.join(", "))
    );
    for w in words {
        let listed = if w.lexicons.is_empty() {
            "none".to_string()
        } else {
            escape(&w.lexicons.join(", "))
        };
        let polarity = w
            .polarity
            .map_or_else(|| "not scored".to_string(), |p| format!("{p:+.3}"));
        let answer = w.prediction.as_ref().map_or_else(String::new, |p| {
            format!("{} ({:.1}%)", escape(&p.label), 100.0 * p.probability)
        });
        let _ = write!(
            s,
            "<tr><td class=\"text\"><b>{}</b></td><td>{listed}</td><td>{polarity}</td>\
             <td>{answer}</td></tr>",
            escape(&w.word)
        );
    }
    s.push_str("</table></div>");
    s
}

/// The attack's clearest failures: original and perturbed text with the words that differ
/// marked, gold label, and both answers with their probabilities.
pub(super) fn failures_table(failures: &Failures) -> String {
    let mut s = format!(
        "<div class=\"examples\"><h3>Failure examples (the {} clearest)</h3>",
        failures.wanted
    );
    if failures.rows.is_empty() {
        s.push_str("<div class=\"none\">No failures to show.</div></div>");
        return s;
    }
    s.push_str(
        "<table><tr><th style=\"width:4em\">line</th><th>original</th><th>perturbed</th>\
         <th style=\"width:16em\">answers</th></tr>",
    );
    for row in &failures.rows {
        s.push_str(&failure_row(row));
    }
    s.push_str("</table></div>");
    s
}

fn failure_row(row: &FailureRow) -> String {
    let f = row.example;
    let gold = f
        .gold
        .as_ref()
        .map_or_else(String::new, |g| format!("gold <b>{}</b><br>", escape(g)));
    format!(
        "<tr><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}<br>\
         <small>{}</small></td><td>{gold}{} ({:.1}%) → <b>{}</b> ({:.1}%)<br>\
         <small>{}</small></td></tr>",
        f.line,
        marked(&row.original),
        marked(&row.perturbed),
        escape(&f.detail),
        escape(&f.original_label),
        100.0 * f.original_confidence,
        escape(&f.perturbed_label),
        100.0 * f.perturbed_confidence,
        escape(&f.why),
    )
}

/// Words joined by single spaces, escaped, the changed ones in `<mark>`.
pub(super) fn marked(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| {
            if w.changed {
                format!("<mark>{}</mark>", escape(w.text))
            } else {
                escape(w.text)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Width of every chart's viewBox; the page scales it to the column.
const CHART_W: f64 = 600.0;
/// Room left of the bars for their labels.
const LABEL_W: f64 = 200.0;
/// Room right of the bars for "12.3% [10.1, 14.9] 123/1000 ▲ worse".
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
        // A verdict outranks the direction: red and green say "changed since last run",
        // orange only "higher is the bad side".
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
        // With no trials there is no bar to draw, only the "n/a" text below.
        if b.rate.n > 0 {
            let (x0, xv, lo, hi) = (x(0.0), x(b.rate.value), x(b.rate.ci_low), x(b.rate.ci_high));
            let mid = y + 8.0;
            // A zero rate still gets a sliver, so that "0%" reads as measured, not missing.
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
fn trend_chart(points: &[TrendPoint]) -> String {
    let (w, h) = (CHART_W, 190.0);
    let (left, right, top, bottom) = (48.0, 16.0, 10.0, 40.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    // A run with no trials has no value to place; it still counts in the heading's "last N
    // runs", which is about history, not about what can be drawn.
    let usable: Vec<&TrendPoint> = points.iter().filter(|p| p.rate.n > 0).collect();
    if usable.is_empty() {
        s.push_str(
            "<text x=\"10\" y=\"20\" font-size=\"12\" fill=\"#5b6478\">no data</text></svg>",
        );
        return s;
    }
    let lo = usable.iter().map(|p| p.rate.ci_low).fold(1.0, f64::min);
    let hi = usable.iter().map(|p| p.rate.ci_high).fold(0.0, f64::max);
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
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.rate.value)))
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#4a78c2\" stroke-width=\"2\"/>",
        path.join(" ")
    );
    // About six date labels fit under the axis; more would overlap.
    let label_every = n.div_ceil(6);
    for (i, p) in usable.iter().enumerate() {
        let (when, r) = (p.finished_at, &p.rate);
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
                _ => when.to_string(),
            };
            // The end labels lean inwards so that they stay inside the chart.
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
    if let Some(p) = usable.last() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#1d2330\" \
             text-anchor=\"middle\">latest: {}</text>",
            left + plot_w / 2.0,
            h - 6.0,
            escape(&p.rate.display_percent())
        );
    }
    s.push_str("</svg>");
    s
}
