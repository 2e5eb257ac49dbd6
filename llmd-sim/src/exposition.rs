//! Merges several `/metrics` pages into one valid exposition, telling the
//! sources apart with extra labels (e.g. `policy`, `endpoint`).

use std::collections::BTreeMap;

/// Merges `pages`, each with the labels to add to every sample. `# HELP`
/// and `# TYPE` lines appear once per family, before its first sample.
pub fn merge(pages: &[(Vec<(String, String)>, String)]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut meta: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (labels, text) in pages {
        let extra: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let extra = extra.join(",");
        let mut family = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut it = rest.split_whitespace();
                let (_, name) = (it.next(), it.next().unwrap_or(""));
                family = name.to_string();
                if !meta.contains_key(&family) {
                    order.push(family.clone());
                }
                let m = meta.entry(family.clone()).or_default();
                if !m.iter().any(|l| l == line) {
                    m.push(line.to_string());
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let labelled = match line.find('{') {
                Some(i) if extra.is_empty() => line[..=i].to_string() + &line[i + 1..],
                Some(i) => format!("{}{extra},{}", &line[..=i], &line[i + 1..]),
                None => match line.find(' ') {
                    Some(i) if !extra.is_empty() => {
                        format!("{}{{{extra}}}{}", &line[..i], &line[i..])
                    }
                    _ => line.to_string(),
                },
            };
            if !meta.contains_key(&family) {
                order.push(family.clone());
                meta.insert(family.clone(), Vec::new());
            }
            samples.entry(family.clone()).or_default().push(labelled);
        }
    }
    let mut out = String::new();
    for f in order {
        for l in meta.get(&f).into_iter().flatten() {
            out.push_str(l);
            out.push('\n');
        }
        for l in samples.get(&f).into_iter().flatten() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn families_once_samples_labelled() {
        let page = "# HELP a x\n# TYPE a gauge\na{m=\"1\"} 3\nb 4\n";
        let l = |v: &str| vec![("endpoint".to_string(), v.to_string())];
        let out = merge(&[(l("e1"), page.to_string()), (l("e2"), page.to_string())]);
        assert_eq!(out.matches("# TYPE a gauge").count(), 1);
        assert!(out.contains("a{endpoint=\"e1\",m=\"1\"} 3"));
        assert!(out.contains("a{endpoint=\"e2\",m=\"1\"} 3"));
        assert!(out.contains("b{endpoint=\"e2\"} 4"));
    }
}
