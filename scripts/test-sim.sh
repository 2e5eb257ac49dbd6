# Simulator section of scripts/test.sh (sourced: set -euo pipefail, $ROOT,
# step and apt_install come from there). Runs the README's first command, the
# main job, and checks that it printed the policy comparison table.
step "llmd simulate (the README's first command)"
sim_out=$(cargo run --release -q -p llmd-sim --bin llmd -- simulate 2>/dev/null)
printf '%s\n' "$sim_out"
for policy in random round-robin least-queue llm-d-default approx-prefix precise-prefix; do
  grep -q "^$policy " <<<"$sim_out" || { echo "llmd simulate: no row for $policy" >&2; exit 1; }
done
