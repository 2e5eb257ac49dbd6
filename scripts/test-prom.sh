# Prometheus section of scripts/test.sh (sourced: set -euo pipefail, $ROOT,
# step and apt_install come from there). Installs Prometheus from Debian,
# checks the exposition with `promtool check metrics`, then runs the
# end-to-end test: a Prometheus of our own (own config and data directory,
# loopback port, stopped by the test) scrapes the metrics of a scripted
# workload and every headline and dashboard query must return the expected
# values. The package's systemd service plays no part.
apt_install prometheus
step "prometheus: promtool check metrics + scrape and query end to end"
PROMETHEUS="$(command -v prometheus)" PROMTOOL="$(command -v promtool)" \
  timeout 900 cargo test -p llmd-sched --features metrics-http --test observe_prometheus -- --ignored
step "prometheus: dashboard JSON is valid"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"], "no panels"' \
  "$ROOT/docs/grafana/llmd-dashboard.json"
step "observe: decision spans through the optional opentelemetry API (feature otel)"
cargo test -p llmd-sched --features otel --test observe_trace
