//! Optional CPU pinning (`BENCH_PIN=1`): the benchmark process (server and direct client) on one
//! CPU, the bridge on another.
//!
//! Why: on small VMs (this one is a 2-vCPU Firecracker guest) waking a thread on an idle vCPU
//! sometimes costs a whole scheduler tick (~4 ms). The bridge hands each request across several
//! threads, so an unpinned run can land in a mode where every call pays that tick, and the
//! latency ratio then measures the hypervisor. Pinning takes that out; unpinned stays the default
//! because that is how the bridge really runs.

/// The CPUs to use when pinning, if pinning is asked for and there are at least two CPUs.
pub struct Pinning {
    pub bench_cpu: usize,
    pub bridge_cpu: usize,
}

impl Pinning {
    pub fn from_env() -> Option<Pinning> {
        let asked = std::env::var("BENCH_PIN").is_ok_and(|v| !v.is_empty() && v != "0");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (asked && cpus >= 2).then_some(Pinning {
            bench_cpu: 0,
            bridge_cpu: 1,
        })
    }
}

/// Pin the calling thread; threads it starts later inherit the mask.
pub fn pin_current_thread(cpu: usize) -> bool {
    set_affinity(0, cpu)
}

/// Pin every thread `pid` has now; threads they start later inherit the mask.
pub fn pin_process(pid: u32, cpu: usize) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut all = true;
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().parse::<libc::pid_t>();
        all &= tid.is_ok_and(|tid| set_affinity(tid, cpu));
    }
    all
}

fn set_affinity(tid: libc::pid_t, cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data, zeroed is its empty value; CPU_SET bounds-checks `cpu`;
    // sched_setaffinity only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
