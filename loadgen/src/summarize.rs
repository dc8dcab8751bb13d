//! `summarize`: the medians, per label, of runs recorded as JSON lines. This is how the benchmark
//! script turns three runs of each scenario into one row of docs/performance.md.

use std::collections::BTreeMap;
use std::fs;

use anyhow::Context as _;
use serde_json::{Map, Value};

use crate::cli::SummarizeArgs;

/// Runs grouped by label (or scenario), in first-seen order.
fn group(lines: Vec<Map<String, Value>>) -> Vec<(String, Vec<Map<String, Value>>)> {
    let mut groups: Vec<(String, Vec<Map<String, Value>>)> = Vec::new();
    for run in lines {
        let key = run
            .get("label")
            .or_else(|| run.get("scenario"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Per group: every numeric field's median over its runs.
pub fn medians(lines: Vec<Map<String, Value>>) -> Vec<(String, usize, BTreeMap<String, f64>)> {
    group(lines)
        .into_iter()
        .map(|(label, runs)| {
            let mut fields: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for run in &runs {
                for (k, v) in run {
                    if let Some(x) = as_number(v) {
                        fields.entry(k.clone()).or_default().push(x);
                    }
                }
            }
            let meds = fields
                .into_iter()
                .filter_map(|(k, v)| Some((k, median(v)?)))
                .collect();
            (label, runs.len(), meds)
        })
        .collect()
}

fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

pub fn run(args: &SummarizeArgs, json: bool) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for path in &args.files {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a JSON line", path.display(), i + 1))?;
            if let Value::Object(o) = v {
                lines.push(o);
            }
        }
    }
    let groups = medians(lines);
    if json {
        for (label, runs, meds) in &groups {
            let mut o = Map::new();
            o.insert("label".into(), label.clone().into());
            o.insert("runs".into(), (*runs).into());
            for (k, v) in meds {
                o.insert(k.clone(), (*v).into());
            }
            println!("{}", Value::Object(o));
        }
        return Ok(());
    }
    if args.fields.is_empty() {
        for (label, runs, meds) in &groups {
            println!("{label} (median of {runs} runs)");
            for (k, v) in meds {
                println!("  {k:<34} {}", show(*v));
            }
        }
        return Ok(());
    }
    println!("| label | runs | {} |", args.fields.join(" | "));
    println!("|---|---|{}", "---|".repeat(args.fields.len()));
    for (label, runs, meds) in &groups {
        let cells: Vec<String> = args
            .fields
            .iter()
            .map(|f| meds.get(f).map_or_else(|| "–".to_owned(), |v| show(*v)))
            .collect();
        println!("| {label} | {runs} | {} |", cells.join(" | "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn medians_per_label_ignore_text_fields() {
        let runs = vec![
            obj(serde_json::json!({"label":"a","p99":3.0,"ok":true,"scenario":"pairs"})),
            obj(serde_json::json!({"label":"a","p99":1.0,"ok":false})),
            obj(serde_json::json!({"label":"b","p99":7.0})),
            obj(serde_json::json!({"label":"a","p99":2.0,"ok":true})),
        ];
        let m = medians(runs);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].0.as_str(), m[0].1), ("a", 3));
        assert_eq!(m[0].2["p99"], 2.0);
        assert_eq!(m[0].2["ok"], 1.0);
        assert!(!m[0].2.contains_key("scenario"));
        assert_eq!(m[1].2["p99"], 7.0);
        assert_eq!(median(vec![1.0, 4.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
