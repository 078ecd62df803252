//! The Markdown report: one table of bridge vs direct figures, then the targets and whether this
//! run met them. Reported only; nothing here fails the run.

use std::fmt::Write;
use std::time::Duration;

use crate::scenarios::{Measurements, Plan};
use crate::stats::{bytes_to_mib, format_ms, median, mib, ms, quantile, ratio};

/// Fixed part of the memory target, in MiB: "peak RSS ≤ 8 MB + 1.2 × the largest message".
const RSS_BASE_MIB: f64 = 8.0;
const RSS_MESSAGE_FACTOR: f64 = 1.2;
/// Added latency per call allowed over the direct client.
const LATENCY_OVERHEAD: f64 = 0.10;
/// Cold start allowed over the direct client's.
const COLD_START_SLACK: Duration = Duration::from_millis(5);

/// Rows of the main table.
struct Table(String);

impl Table {
    fn row(&mut self, name: &str, bridge: &str, direct: &str, ratio: &str) {
        let _ = writeln!(self.0, "| {name} | {bridge} | {direct} | {ratio} |");
    }

    fn timed(&mut self, name: &str, bridge: Duration, direct: Duration) {
        let ratio = ratio(bridge, direct);
        self.row(name, &format_ms(bridge), &format_ms(direct), &ratio);
    }

    /// A bridge-only figure.
    fn bridge_only(&mut self, name: &str, bridge: &str) {
        self.row(name, bridge, "—", "—");
    }
}

pub fn render(plan: &Plan, m: &Measurements) -> String {
    let mut table = Table(String::new());
    table.row("measurement", "bridge", "direct", "ratio");
    table.row("---", "---:", "---:", "---:");

    let cold = (median(&m.cold_start.bridge), median(&m.cold_start.direct));
    let name = format!(
        "cold start → initialize answered (median of {})",
        m.cold_start.bridge.len()
    );
    table.timed(&name, cold.0, cold.1);

    let p50 = (quantile(&m.echo.bridge, 0.5), quantile(&m.echo.direct, 0.5));
    let name = format!(
        "echo tools/call, sequential, p50 ({} calls)",
        m.echo.bridge.len()
    );
    table.timed(&name, p50.0, p50.1);
    table.timed(
        "echo tools/call, sequential, p99",
        quantile(&m.echo.bridge, 0.99),
        quantile(&m.echo.direct, 0.99),
    );

    let name = format!(
        "{} concurrent echo calls, all answered, first burst (new connections)",
        plan.burst_size
    );
    table.timed(&name, m.burst_first.bridge, m.burst_first.direct);
    if !m.burst_warm.bridge.is_empty() {
        let name = format!(
            "{} concurrent echo calls, all answered, pooled connections (median of {})",
            plan.burst_size,
            m.burst_warm.bridge.len()
        );
        table.timed(
            &name,
            median(&m.burst_warm.bridge),
            median(&m.burst_warm.direct),
        );
    }

    let name = format!(
        "{} echo calls beside a {} ms slow call, p50",
        plan.fast_beside_slow, plan.slow_ms
    );
    table.timed(
        &name,
        median(&m.beside_slow.bridge),
        median(&m.beside_slow.direct),
    );
    table.timed(
        "… the same echo calls, max",
        quantile(&m.beside_slow.bridge, 1.0),
        quantile(&m.beside_slow.direct, 1.0),
    );
    table.timed(
        "… the slow call itself",
        m.slow_total.bridge,
        m.slow_total.direct,
    );

    let name = format!(
        "{:.1} MB result ({} bytes of text), request → full response (median of {})",
        plan.big_bytes as f64 / 1e6,
        plan.big_bytes,
        m.big.bridge.len()
    );
    table.timed(&name, median(&m.big.bridge), median(&m.big.direct));

    let name = format!(
        "exit after stdin EOF, idle session (median of {}; direct: the DELETE alone)",
        m.exit.bridge.len()
    );
    table.timed(&name, median(&m.exit.bridge), median(&m.exit.direct));
    table.bridge_only(
        "exit after stdin EOF, after all the load above",
        &format_ms(m.exit_after_load),
    );
    for (phase, memory) in &m.memory {
        table.bridge_only(
            &format!("RSS {phase}: peak (VmHWM) / current (VmRSS)"),
            &format!(
                "{:.1} / {:.1} MiB",
                mib(memory.peak_kib),
                mib(memory.current_kib)
            ),
        );
    }
    table.bridge_only(
        "peak RSS of a fresh bridge: initialize + one large result (VmHWM)",
        &format!("{:.1} MiB", mib(m.single_big_peak_kib)),
    );
    let message_mib = bytes_to_mib(m.largest_message);
    table.bridge_only(
        &format!(
            "1.2 × largest message in flight ({} bytes)",
            m.largest_message
        ),
        &format!("{:.1} MiB", RSS_MESSAGE_FACTOR * message_mib),
    );
    let mut out = table.0;
    let _ = writeln!(
        out,
        "\nSequential echo p50 per round of {} calls — bridge: {}; direct: {}.",
        m.echo.bridge.len() / plan.sequential_rounds.max(1),
        round_p50s(&m.echo.bridge, plan.sequential_rounds),
        round_p50s(&m.echo.direct, plan.sequential_rounds)
    );
    out.push_str(
        "A round at ~4 ms (one scheduler tick) is a cross-vCPU wake-up delay of small VMs, \
         not the code path: see examples/bench/affinity.rs; `BENCH_PIN=1` avoids it.\n",
    );

    out.push_str(
        "\nDirect: the library's own agent (`http::build` + `tls::client_config`) POSTing the same \
         JSON-RPC bodies in-process and reading the SSE reply up to its `data:` line; no stdio hop. \
         Its cold start includes parsing the same flags and loading the same identity. Both talk to \
         the same in-process mTLS test server on 127.0.0.1.\n",
    );

    out.push_str("\n### Targets (reported, not enforced)\n\n");
    out.push_str("| target | this run | limit | status |\n|---|---:|---:|---|\n");
    let added = p50.0.saturating_sub(p50.1);
    let overhead = if p50.1.is_zero() {
        0.0
    } else {
        ms(added) / ms(p50.1)
    };
    let _ = writeln!(
        out,
        "| added latency per call ≤ 10% over direct (sequential p50) | +{} (+{:.0}%) | +{} (+10%) | {} |",
        format_ms(added),
        overhead * 100.0,
        format_ms(p50.1.mul_f64(LATENCY_OVERHEAD)),
        status(overhead <= LATENCY_OVERHEAD)
    );
    let cold_limit = cold.1 + COLD_START_SLACK;
    let _ = writeln!(
        out,
        "| cold start ≤ direct + 5 ms | {} | {} | {} |",
        format_ms(cold.0),
        format_ms(cold_limit),
        status(cold.0 <= cold_limit)
    );
    let budget = RSS_BASE_MIB + RSS_MESSAGE_FACTOR * message_mib;
    let peaks = [
        ("initialize + one large result", m.single_big_peak_kib),
        ("after all the phases above", m.lifetime_peak_kib),
    ];
    for (which, kib) in peaks {
        let peak = mib(kib);
        let _ = writeln!(
            out,
            "| peak RSS ≤ 8 MiB + 1.2 × largest message ({which}) | {peak:.1} MiB | {budget:.1} MiB | {} |",
            status(peak <= budget)
        );
    }
    out
}

/// The p50 of each consecutive round, to show whether one round (or the whole run) was slowed by
/// the machine rather than by the code.
fn round_p50s(samples: &[Duration], rounds: usize) -> String {
    let size = (samples.len() / rounds.max(1)).max(1);
    samples
        .chunks(size)
        .map(|round| format_ms(median(round)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**not met**"
    }
}
