//! Opening the authorization URL in a browser, from a process whose stdout is the JSON-RPC channel.
//!
//! Every child gets null stdin, stdout and stderr: one byte of a launcher's chatter on our stdout
//! would corrupt the client's stream. Children run in their own process group (a Ctrl-C meant for
//! a terminal `login` does not kill a browser mid-launch), are never waited for on the caller's
//! thread, and are reaped by a small thread so that none is left a zombie. The caller prints the
//! URL on stderr itself, whatever happens here.

use std::io;
use std::process::{Child, Command, Stdio};

/// How to open the authorization URL, from `--oauth-browser` / `MCP_REMOTE_OAUTH_BROWSER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opener {
    /// The system's way (the default): see [`open`].
    System,
    /// Open nothing; the URL on stderr is all the user gets.
    None,
    /// A program and its first arguments; the URL is appended as the last argument.
    Command(Vec<String>),
}

impl Opener {
    /// `system`, `none`, or a command split on whitespace (no shell, no quoting: a program whose
    /// path has spaces needs a wrapper script).
    pub fn parse(spec: &str) -> Result<Opener, String> {
        let words: Vec<String> = spec.split_whitespace().map(str::to_owned).collect();
        match words.as_slice() {
            [] => Err(
                "--oauth-browser is empty: give a command (the URL is appended), \
                 `system` or `none`"
                    .to_owned(),
            ),
            [word] if word.eq_ignore_ascii_case("none") => Ok(Opener::None),
            [word] if word.eq_ignore_ascii_case("system") => Ok(Opener::System),
            _ => Ok(Opener::Command(words)),
        }
    }
}

/// Open `url`: System = per OS (macOS /usr/bin/open; Windows ShellExecuteW, not `cmd /c start`,
/// where an `&` in the query splits the command; Linux/BSD: $BROWSER then xdg-open, gio open,
/// sensible-browser, only when DISPLAY/WAYLAND_DISPLAY is set; WSL: wslview first); Command =
/// argv + url as last argument; None = nothing. Returns whether a launch was attempted, or the
/// spawn error in one line.
pub fn open(opener: &Opener, url: &str) -> Result<bool, String> {
    match opener {
        Opener::None => Ok(false),
        Opener::Command(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Ok(false);
            };
            launch(program, args, url).map(|()| true).map_err(|error| {
                format!("cannot start the --oauth-browser command `{program}`: {error}")
            })
        }
        Opener::System => system::open(url),
    }
}

/// Start `program args… url` detached from our stdio, and leave a thread to reap it.
fn launch(program: &str, args: &[String], url: &str) -> io::Result<()> {
    let mut command = Command::new(program);
    command
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn()?;
    reap(child, program);
    Ok(())
}

/// Wait for `child` off the caller's thread (a launcher may run as long as the browser).
fn reap(mut child: Child, program: &str) {
    let name = program.to_owned();
    let spawned = std::thread::Builder::new()
        .name("browser-reaper".into())
        .spawn(move || match child.wait() {
            Ok(status) if !status.success() => {
                log::debug!("browser launcher {name} ended with {status}");
            }
            Ok(_) => {}
            Err(error) => log::debug!("cannot wait for browser launcher {name}: {error}"),
        });
    if let Err(error) = spawned {
        // The child then stays a zombie until the bridge exits: harmless, and worth a word.
        log::debug!("cannot start a thread to reap the browser launcher: {error}");
    }
}

#[cfg(target_os = "macos")]
mod system {
    pub fn open(url: &str) -> Result<bool, String> {
        super::launch("/usr/bin/open", &[], url)
            .map(|()| true)
            .map_err(|error| format!("cannot start /usr/bin/open for the sign-in: {error}"))
    }
}

#[cfg(windows)]
mod system {
    use windows_sys::Win32::UI::Shell::ShellExecuteW;
    use windows_sys::Win32::UI::WindowsAndMessaging::SW_SHOWNORMAL;

    /// ShellExecuteW hands the URL to the default browser as one string: no command line is
    /// parsed, so `&` and `^` in the query stay what they are.
    pub fn open(url: &str) -> Result<bool, String> {
        let wide = |text: &str| -> Vec<u16> { text.encode_utf16().chain(Some(0)).collect() };
        let (verb, file) = (wide("open"), wide(url));
        // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call; the null window,
        // parameters and directory are allowed by the API.
        let result = unsafe {
            ShellExecuteW(
                std::ptr::null_mut(),
                verb.as_ptr(),
                file.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                SW_SHOWNORMAL,
            )
        };
        // Success is a value above 32 (the API's documented convention).
        let code = result as isize;
        if code > 32 {
            Ok(true)
        } else {
            Err(format!(
                "cannot open the default browser (ShellExecuteW error {code}): open the URL \
                 printed above by hand"
            ))
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod system {
    use std::io::ErrorKind;

    pub fn open(url: &str) -> Result<bool, String> {
        let wsl = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| release.to_ascii_lowercase().contains("microsoft"))
            .unwrap_or(false);
        let env = |name: &str| std::env::var(name).ok();
        let mut failure = None;
        for argv in commands(url, &env, wsl) {
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            // The URL is already in place (it may sit inside $BROWSER's arguments).
            let (args, last) = match args.split_last() {
                Some((last, args)) => (args, last.as_str()),
                None => continue,
            };
            match super::launch(program, args, last) {
                Ok(()) => return Ok(true),
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => failure = Some(format!("cannot start {program}: {error}")),
            }
        }
        failure.map_or(Ok(false), Err)
    }

    /// The launchers to try in order, each with the URL in place. Only with a display (or under
    /// WSL, where `wslview` reaches the Windows desktop): without one, `xdg-open` would start a
    /// text browser with no terminal to draw on.
    pub(super) fn commands(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
        wsl: bool,
    ) -> Vec<Vec<String>> {
        let mut commands = Vec::new();
        if wsl {
            commands.push(vec!["wslview".to_owned(), url.to_owned()]);
        }
        let set = |name: &str| env(name).is_some_and(|value| !value.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return commands;
        }
        // $BROWSER: `:`-separated commands; `%s` marks where the URL goes, else it is appended.
        for entry in env("BROWSER").unwrap_or_default().split(':') {
            let mut argv: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
            if argv.is_empty() {
                continue;
            }
            if argv.iter().any(|word| word.contains("%s")) {
                for word in &mut argv {
                    *word = word.replace("%s", url);
                }
            } else {
                argv.push(url.to_owned());
            }
            commands.push(argv);
        }
        for launcher in [&["xdg-open"][..], &["gio", "open"], &["sensible-browser"]] {
            let mut argv: Vec<String> = launcher.iter().map(|word| (*word).to_owned()).collect();
            argv.push(url.to_owned());
            commands.push(argv);
        }
        commands
    }
}

#[cfg(not(any(unix, windows)))]
mod system {
    pub fn open(_url: &str) -> Result<bool, String> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_recognises_none_system_and_commands() {
        assert_eq!(Opener::parse("none"), Ok(Opener::None));
        assert_eq!(Opener::parse(" NONE "), Ok(Opener::None));
        assert_eq!(Opener::parse("system"), Ok(Opener::System));
        assert_eq!(
            Opener::parse("firefox  --new-window\t-P work"),
            Ok(Opener::Command(
                ["firefox", "--new-window", "-P", "work"]
                    .map(String::from)
                    .to_vec()
            ))
        );
        assert_eq!(
            Opener::parse("none of-these"),
            Ok(Opener::Command(
                ["none", "of-these"].map(String::from).to_vec()
            ))
        );
        let error = Opener::parse(" \t").err().unwrap_or_default();
        assert!(error.contains("--oauth-browser is empty"), "{error}");
    }

    #[test]
    fn none_launches_nothing() {
        assert_eq!(open(&Opener::None, "https://as.test/authorize"), Ok(false));
    }

    #[test]
    fn a_missing_command_is_one_line_naming_it() {
        let opener = Opener::Command(vec!["/nonexistent/mcp-browser".into()]);
        let error = open(&opener, "https://as.test/authorize")
            .err()
            .unwrap_or_default();
        assert!(
            error.starts_with(
                "cannot start the --oauth-browser command `/nonexistent/mcp-browser`:"
            ),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn system_launchers_need_a_display_except_under_wsl() {
        let url = "https://as.test/a?x=1&y=2";
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let strings = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();

        assert!(system::commands(url, &vars(&[("BROWSER", "firefox")]), false).is_empty());
        assert!(system::commands(url, &vars(&[("DISPLAY", "")]), false).is_empty());
        assert_eq!(
            system::commands(url, &vars(&[]), true),
            vec![strings(&["wslview", url])]
        );
        assert_eq!(
            system::commands(
                url,
                &vars(&[
                    ("WAYLAND_DISPLAY", "wayland-0"),
                    ("BROWSER", "firefox -P w:chromium --app=%s:")
                ]),
                false
            ),
            vec![
                strings(&["firefox", "-P", "w", url]),
                strings(&["chromium", &format!("--app={url}")]),
                strings(&["xdg-open", url]),
                strings(&["gio", "open", url]),
                strings(&["sensible-browser", url]),
            ]
        );
    }
}
