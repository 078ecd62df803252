//! STUB (replaced by the oauthio branch): opening the authorization URL.
use std::process::{Command, Stdio};
pub enum Opener {
    System,
    None,
    Command(Vec<String>),
}
impl Opener {
    pub fn parse(spec: &str) -> Result<Opener, String> {
        match spec.trim() {
            "" | "system" => Ok(Opener::System),
            "none" => Ok(Opener::None),
            other => Ok(Opener::Command(other.split_whitespace().map(str::to_string).collect())),
        }
    }
}
pub fn open(opener: &Opener, url: &str) -> Result<bool, String> {
    let argv: Vec<String> = match opener {
        Opener::None => return Ok(false),
        Opener::System => vec!["xdg-open".into()],
        Opener::Command(argv) => argv.clone(),
    };
    let Some((program, args)) = argv.split_first() else { return Ok(false) };
    let mut child = Command::new(program).args(args).arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
    std::thread::spawn(move || { let _ = child.wait(); });
    Ok(true)
}
