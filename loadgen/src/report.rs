//! A scenario's result: one flat JSON object (for `--json` and the medians of `summarize`) and
//! the same figures as a small human-readable table.

use serde_json::{Map, Value};

use crate::latency::Summary;

pub struct Report {
    json: Map<String, Value>,
    rows: Vec<(String, String)>,
}

/// Rounds for display and JSON; nobody needs a latency to the picosecond.
pub fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

impl Report {
    pub fn new(scenario: &str, label: Option<&str>) -> Self {
        let mut r = Self {
            json: Map::new(),
            rows: Vec::new(),
        };
        r.set("scenario", scenario);
        if let Some(label) = label {
            r.set("label", label);
        }
        r
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.json.insert(key.to_owned(), value.into());
    }

    pub fn num(&mut self, key: &str, value: f64) {
        self.set(key, round(value, 3));
    }

    pub fn row(&mut self, name: &str, text: impl Into<String>) {
        self.rows.push((name.to_owned(), text.into()));
    }

    /// `prefix_p50_us` … `prefix_max_us` in the JSON, one table row.
    pub fn latency(&mut self, prefix: &str, name: &str, s: Summary) {
        for (k, v) in [
            ("p50", s.p50),
            ("p90", s.p90),
            ("p99", s.p99),
            ("p999", s.p999),
            ("max", s.max),
            ("mean", s.mean),
        ] {
            self.num(&format!("{prefix}_{k}_us"), v);
        }
        self.set(&format!("{prefix}_samples"), s.count);
        self.row(
            name,
            format!(
                "p50 {} · p90 {} · p99 {} · p99.9 {} · max {}  ({} samples)",
                us(s.p50),
                us(s.p90),
                us(s.p99),
                us(s.p999),
                us(s.max),
                s.count
            ),
        );
    }

    pub fn json(&self) -> Value {
        Value::Object(self.json.clone())
    }

    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, text) in &self.rows {
            out.push_str(&format!("{name:<width$}  {text}\n"));
        }
        out
    }

    /// The table on stdout, or with `json` the JSON line on stdout and the table on stderr.
    pub fn print(&self, json: bool) {
        if json {
            eprint!("{}", self.table());
            println!("{}", self.json());
        } else {
            print!("{}", self.table());
        }
    }
}

/// Microseconds, with a unit that reads well.
pub fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_table_hold_the_same_figures() {
        let mut r = Report::new("pairs", Some("row-1"));
        r.num("x", 1.23456);
        r.latency(
            "cpu",
            "desktop→viewer",
            Summary {
                count: 3,
                p50: 52.0,
                p90: 80.0,
                p99: 1500.0,
                p999: 12_000.0,
                max: 20_000.0,
                mean: 60.0,
            },
        );
        let j = r.json();
        assert_eq!(j["scenario"], "pairs");
        assert_eq!(j["label"], "row-1");
        assert_eq!(j["x"], 1.235);
        assert_eq!(j["cpu_p99_us"], 1500.0);
        assert_eq!(j["cpu_samples"], 3);
        let t = r.table();
        assert!(t.contains("p50 52 µs"), "{t}");
        assert!(t.contains("p99 1.50 ms"), "{t}");
        assert!(t.contains("max 20.0 ms"), "{t}");
    }
}
