//! The Markdown section for the hostile-server measurements (bench/engine.rs): each figure
//! beside its target from issue 11, the figure ÷ the target, and whether this run met it.

use std::fmt::Write;
use std::time::Duration;

use crate::bridge_proc::{Ending, Exit};
use crate::engine::{
    EngineMeasurements, Outcome, CANCELLATIONS, ENDLESS, ENDLESS_BUDGET_MIB, ENDLESS_MESSAGE_MIB,
    EXIT_CAP, FLOOD_BUDGET_MIB, FLOOD_CHECKED, FLOOD_UNREAD, IN_FLIGHT, IN_FLIGHT_SLOW_MS,
    RSS_CEILING_KIB, STAGE_WAIT,
};
use crate::rss_watch::RssPeak;
use crate::stats::{format_ms, mib};

/// Issue 11's targets.
const EXIT_TARGET: Duration = Duration::from_secs(2);
const RSS_OVER_BUDGET_MIB: u64 = 16;
const IN_FLIGHT_TARGET_MIB: u64 = 32;
const CONNECTIONS_TARGET: usize = 10;

struct Table(String);

impl Table {
    fn row(&mut self, name: &str, figure: &str, target: &str, ratio: &str, met: Option<bool>) {
        let status = match met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "—",
        };
        let _ = writeln!(
            self.0,
            "| {name} | {figure} | {target} | {ratio} | {status} |"
        );
    }

    fn failed(&mut self, name: &str, why: &str) {
        let why = why.replace('\n', " ").replace('|', "\\|");
        self.row(name, &format!("not measured: {why}"), "—", "—", Some(false));
    }

    fn exit(&mut self, name: &str, exit: Exit) {
        let target = format!("≤ {}", format_ms(EXIT_TARGET));
        match exit {
            Exit::After(took) => self.row(
                name,
                &format_ms(took),
                &target,
                &times(took.as_secs_f64() / EXIT_TARGET.as_secs_f64()),
                Some(took <= EXIT_TARGET),
            ),
            Exit::Killed(cap) => self.row(
                name,
                &format!("> {} s / never (killed)", cap.as_secs()),
                &target,
                &format!("> {}", times(cap.as_secs_f64() / EXIT_TARGET.as_secs_f64())),
                Some(false),
            ),
        }
    }

    fn exit_unless_killed(&mut self, name: &str, exit: Option<Exit>) {
        match exit {
            Some(exit) => self.exit(name, exit),
            None => self.row(name, "— (killed over the memory ceiling)", "—", "—", None),
        }
    }

    fn peak(&mut self, name: &str, peak: RssPeak, limit_mib: u64) {
        let target = format!("≤ {limit_mib} MiB");
        match peak.killed_after {
            None => {
                let got = mib(peak.peak_kib);
                self.row(
                    name,
                    &format!("{got:.1} MiB"),
                    &target,
                    &times(got / limit_mib as f64),
                    Some(got <= limit_mib as f64),
                );
            }
            Some(after) => {
                let ceiling = mib(RSS_CEILING_KIB);
                self.row(
                    name,
                    &format!(
                        "> {ceiling:.0} MiB (killed {:.1} s in)",
                        after.as_secs_f64()
                    ),
                    &target,
                    &format!("> {}", times(ceiling / limit_mib as f64)),
                    Some(false),
                );
            }
        }
    }
}

fn times(x: f64) -> String {
    format!("{x:.2}×")
}

fn ending(how: Ending) -> &'static str {
    match how {
        Ending::Eof => "stdin EOF",
        Ending::Sigterm => "SIGTERM",
    }
}

pub fn render(m: &EngineMeasurements) -> String {
    let mut t = Table(String::new());
    t.0.push_str("| measurement | this run | target | ÷ target | status |\n");
    t.0.push_str("|---|---:|---:|---:|---|\n");
    let mut notes = Vec::new();

    for figure in &m.exits {
        let name = format!(
            "exit after {}: {}",
            ending(figure.how),
            figure.case.describe()
        );
        match &figure.exit {
            Ok(exit) => t.exit(&name, *exit),
            Err(why) => t.failed(&name, why),
        }
        if !figure.note.is_empty() {
            notes.push(format!("{name}: {}.", figure.note));
        }
    }

    match m
        .cancel
        .iter()
        .max_by_key(|c| (c.connections, c.ping.is_none()))
    {
        Some(c) => {
            let name = format!(
                "connections held after {CANCELLATIONS} cancellations (server's count, worse of {} runs)",
                m.cancel.len()
            );
            t.row(
                &name,
                &c.connections.to_string(),
                &format!("≤ {CONNECTIONS_TARGET}"),
                &times(c.connections as f64 / CONNECTIONS_TARGET as f64),
                Some(c.connections <= CONNECTIONS_TARGET),
            );
            let ping = c
                .ping
                .map_or_else(|| format!("never ({} s)", STAGE_WAIT.as_secs()), format_ms);
            t.row(
                "… a ping after them answered in",
                &ping,
                "answered",
                "—",
                Some(c.ping.is_some()),
            );
            if c.reached < CANCELLATIONS {
                notes.push(format!(
                    "Cancellations: only {} of {CANCELLATIONS} requests reached the server; the next one never did.",
                    c.reached
                ));
            }
        }
        None => t.failed(
            &format!("connections held after {CANCELLATIONS} cancellations"),
            "the cancellation scenario could not be staged",
        ),
    }

    flood_rows(&mut t, &m.flood);
    endless_rows(&mut t, &m.endless);
    in_flight_rows(&mut t, &m.in_flight);
    keep_alive_rows(&mut t, &m.keep_alive);

    let mut out = format!(
        "\n### Hostile servers (issue 11; {:.0} s)\n\n",
        m.took.as_secs_f64()
    );
    out.push_str(&t.0);
    out.push('\n');
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(
        out,
        "- Every wait is capped: a bridge still running {} s after EOF or SIGTERM is killed \
         (\"never\"), one over {:.0} MiB resident is killed (\"> {:.0} MiB\"). Peak RSS: VmRSS \
         sampled every 10 ms and VmHWM. Budgets are set with MCP_REMOTE_MEMORY_BUDGET / \
         MCP_REMOTE_MAX_MESSAGE_SIZE (same as the flags; a bridge without them ignores the \
         variables instead of refusing to start). Each scenario has a fresh test server.",
        EXIT_CAP.as_secs(),
        mib(RSS_CEILING_KIB),
        mib(RSS_CEILING_KIB)
    );
    out
}

fn keep_alive_rows(t: &mut Table, figures: &crate::keepalive::KeepAliveFigures) {
    use crate::keepalive::{CALLS, KEEP_ALIVE};
    let secs = KEEP_ALIVE.as_secs();
    for (server, edge) in [
        (
            format!("`Keep-Alive: timeout={secs}` sent"),
            &figures.hinted,
        ),
        ("no Keep-Alive hint".to_string(), &figures.silent),
    ] {
        let name =
            format!("keep-alive edge: failed calls of {CALLS} sent after {secs} s idle ({server})");
        match &edge.bridge {
            Ok(failed) => {
                let direct = match &edge.direct {
                    Ok(d) => format!("direct client {d}"),
                    Err(why) => format!("direct client not measured: {why}"),
                };
                t.row(
                    &name,
                    &format!("{failed} (bridge); {direct}"),
                    "0",
                    "—",
                    Some(*failed == 0),
                );
            }
            Err(why) => t.failed(&name, why),
        }
    }
}

fn flood_rows(t: &mut Table, flood: &Outcome<crate::engine::FloodFigures>) {
    let name = format!(
        "peak RSS, notification flood with stdout unread {} s (budget {FLOOD_BUDGET_MIB} MiB)",
        FLOOD_UNREAD.as_secs()
    );
    let f = match flood {
        Ok(f) => f,
        Err(why) => return t.failed(&name, why),
    };
    t.peak(&name, f.peak, FLOOD_BUDGET_MIB + RSS_OVER_BUDGET_MIB);
    let loss = f.loss.clone().unwrap_or_else(|| "none".into());
    t.row(
        &format!("… notifications lost or reordered once reading resumed (first {FLOOD_CHECKED})"),
        &loss,
        "none",
        "—",
        Some(f.loss.is_none()),
    );
    t.exit_unless_killed("… exit after stdin EOF during the flood", f.exit);
}

fn endless_rows(t: &mut Table, endless: &Outcome<crate::engine::EndlessFigures>) {
    let name = format!(
        "peak RSS, {ENDLESS} concurrent never-ending events (budget {ENDLESS_BUDGET_MIB} MiB, \
         max message {ENDLESS_MESSAGE_MIB} MiB)"
    );
    let e = match endless {
        Ok(e) => e,
        Err(why) => return t.failed(&name, why),
    };
    t.peak(&name, e.peak, ENDLESS_BUDGET_MIB + RSS_OVER_BUDGET_MIB);
    let mut figure = format!("{} of {ENDLESS}", e.one_error);
    if e.wrong > 0 {
        let _ = write!(figure, " ({} answered twice or with a result)", e.wrong);
    }
    t.row(
        "… requests answered with exactly one error (within 30 s)",
        &figure,
        &format!("{ENDLESS} of {ENDLESS}"),
        "—",
        Some(e.one_error == ENDLESS as usize && e.wrong == 0),
    );
    t.exit_unless_killed("… exit after stdin EOF", e.exit);
}

fn in_flight_rows(t: &mut Table, in_flight: &Outcome<crate::engine::InFlightFigures>) {
    let name = format!(
        "peak RSS, {IN_FLIGHT} requests in flight on a slow server ({IN_FLIGHT_SLOW_MS} ms `slow`), \
         this bridge (target/release: glibc)"
    );
    let f = match in_flight {
        Ok(f) => f,
        Err(why) => return t.failed(&name, why),
    };
    in_flight_run_rows(t, &name, &f.bridge);
    let musl = "… the static musl build (`make musl`), same calls";
    match &f.musl {
        Ok(run) => in_flight_run_rows(t, musl, run),
        Err(why) => t.failed(musl, why),
    }
    let name = "… the direct client, same calls, one thread each, own process (÷: bridge ÷ direct)";
    match &f.direct {
        Ok((peak, answered)) => {
            let direct = mib(peak.peak_kib);
            let ratio = if direct > 0.0 && f.bridge.peak.killed_after.is_none() {
                times(mib(f.bridge.peak.peak_kib) / direct)
            } else {
                "—".into()
            };
            t.row(
                name,
                &format!("{direct:.1} MiB ({answered} of {IN_FLIGHT} answered)"),
                "—",
                &ratio,
                None,
            );
        }
        Err(why) => t.failed(name, why),
    }
}

/// The peak of one build, then how many calls it answered and its most threads.
fn in_flight_run_rows(t: &mut Table, name: &str, run: &crate::engine::InFlightRun) {
    t.peak(name, run.peak, IN_FLIGHT_TARGET_MIB);
    t.row(
        &format!(
            "… requests answered (most threads at once: {})",
            run.peak.threads
        ),
        &format!("{} of {IN_FLIGHT}", run.answered),
        &format!("{IN_FLIGHT} of {IN_FLIGHT}"),
        "—",
        Some(run.answered == IN_FLIGHT),
    );
}
