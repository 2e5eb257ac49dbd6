//! `header-based-testing-filter`: llm-d's test filter that keeps exactly the
//! endpoints a request names in its `test-epp-endpoint-selection` header.

use crate::framework::{CycleContext, EndpointIndex, Filter};

/// The header naming the endpoints to keep.
pub const HEADER: &str = "test-epp-endpoint-selection";

/// Keeps the endpoints listed in [`HEADER`] (comma-separated `ip` or
/// `ip:port`, IPv6 in brackets), in the header's order and once per IP; an
/// `ip:port` item matches only that address, a bare `ip` any endpoint on it
/// (the last registered wins, as in llm-d). No header, or a blank one, keeps
/// nothing. No parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderBasedTestingFilter;

fn trim(h: &str) -> &str {
    h.trim().trim_matches(|c| c == '[' || c == ']')
}

fn split(address: &str) -> (&str, Option<&str>) {
    match address.trim().rsplit_once(':') {
        // A bare IPv6 address (more than one colon, no brackets) has no port.
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (trim(h), Some(p.trim())),
        _ => (trim(address), None),
    }
}

impl Filter for HeaderBasedTestingFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        let Some(header) = ctx
            .request()
            .header_value(HEADER)
            .filter(|v| !v.trim().is_empty())
        else {
            candidates.clear();
            return;
        };
        let mut by_ip: Vec<(&str, EndpointIndex)> = Vec::new();
        let mut by_addr: Vec<(&str, &str, EndpointIndex)> = Vec::new();
        for &i in candidates.iter() {
            let (ip, port) = split(ctx.endpoint(i).address());
            if ip.is_empty() {
                continue;
            }
            match by_ip.iter_mut().find(|(x, _)| *x == ip) {
                Some(e) => e.1 = i,
                None => by_ip.push((ip, i)),
            }
            if let Some(p) = port.filter(|p| !p.is_empty()) {
                by_addr.push((ip, p, i));
            }
        }
        let mut out: Vec<EndpointIndex> = Vec::new();
        let mut seen_ips: Vec<&str> = Vec::new();
        for item in header.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (host, port) = split(item);
            let found = match port {
                Some(p) => by_addr
                    .iter()
                    .rev()
                    .find(|(ip, pp, _)| *ip == host && *pp == p)
                    .map(|e| e.2),
                None => by_ip.iter().find(|(ip, _)| *ip == host).map(|e| e.1),
            };
            if let Some(i) = found {
                let (ip, _) = split(ctx.endpoint(i).address());
                if !seen_ips.contains(&ip) {
                    seen_ips.push(ip);
                    out.push(i);
                }
            }
        }
        *candidates = out;
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn addresses_split_like_go() {
        assert_eq!(split("10.0.0.7:3000"), ("10.0.0.7", Some("3000")));
        assert_eq!(split(" 10.0.0.7 "), ("10.0.0.7", None));
        assert_eq!(split("[fd00::1]:8000"), ("fd00::1", Some("8000")));
        assert_eq!(split("fd00::1"), ("fd00::1", None));
    }
}
